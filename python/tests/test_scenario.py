"""Scenario: load / from_toml / from_dict / to_dict / to_toml / replace, and invalid input as
ScenarioError with the CLI's message, key, line and column."""

from __future__ import annotations

import math
import pickle
import subprocess

import pytest

import flatscape as fs
from conftest import SCENARIOS

HESSIAN = SCENARIOS / "hessian-valley.toml"


def test_load_from_toml_and_from_dict_agree():
    sc = fs.Scenario.load(HESSIAN)
    assert sc.name == "hessian-valley"
    assert sc.path == str(HESSIAN)
    d = sc.to_dict()
    assert d["noise"] == {"kind": "hessian", "eta": 0.01, "sigma": 0.2}
    assert d["fokker_planck"]["x"] == {"min": -1.6, "max": 1.6, "cells": 640}
    assert fs.Scenario.from_toml(HESSIAN.read_text()) == sc
    assert fs.Scenario.from_dict(d) == sc
    assert fs.Scenario.from_toml(sc.to_toml()).to_dict() == d
    assert pickle.loads(pickle.dumps(sc)) == sc
    assert fs.check(sc) is None and fs.check(HESSIAN) is None and fs.check(d) is None


def test_replace_returns_a_validated_copy():
    sc = fs.Scenario.load(HESSIAN)
    sc2 = sc.replace({"noise.sigma": 0.1, "fokker_planck.x.cells": 320})
    assert sc2.to_dict()["noise"]["sigma"] == 0.1
    assert sc2.to_dict()["fokker_planck"]["x"]["cells"] == 320
    assert sc.to_dict()["noise"]["sigma"] == 0.2  # the original is untouched
    assert "theory" not in sc.replace({"theory": None}).to_dict()


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"noise.sigma": -0.1}, "noise.sigma"),
        ({"noise.sigma": math.nan}, "noise.sigma"),
        ({"fokker_planck.x.cells": 2}, "fokker_planck.x.cells"),
        ({"fokker_planck.x.cells": "many"}, "fokker_planck.x.cells"),
        ({"fokker_planck.y.max": -5.0}, "fokker_planck.y.max"),
        ({"noise.eta": 0.0}, "noise.eta"),
        ({"noise.temperature": 1.0}, "noise.temperature"),
        ({"noise.sigma.value": 1.0}, "noise.sigma"),
        ({"noise.sigma": {1, 2}}, "noise.sigma"),
        ({"noise.sigma": 2**70}, "noise.sigma"),
    ],
)
def test_replace_rejects_a_bad_value_naming_the_dotted_key(changes, key):
    sc = fs.Scenario.load(HESSIAN)
    with pytest.raises(fs.ScenarioError) as err:
        sc.replace(changes)
    assert isinstance(err.value, ValueError)
    assert err.value.key == key, str(err.value)
    assert f"key `{key}`" in str(err.value)
    assert str(err.value).startswith(str(HESSIAN))


def test_from_dict_with_an_unknown_key_fails_naming_it():
    d = fs.Scenario.load(HESSIAN).to_dict()
    d["noise"]["temprature"] = 0.1
    with pytest.raises(fs.ScenarioError) as err:
        fs.Scenario.from_dict(d)
    assert "unknown field `temprature`" in str(err.value)
    assert err.value.line is None and err.value.column is None
    assert err.value.key == "noise.temprature"


def test_file_errors_carry_the_cli_message_line_and_column(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(HESSIAN.read_text().replace("sigma = 0.2", "sigma = -0.2"))
    with pytest.raises(fs.ScenarioError) as err:
        fs.Scenario.load(bad)
    e = err.value
    assert (e.key, e.file) == ("noise.sigma", str(bad))
    line = bad.read_text().splitlines().index("sigma = -0.2") + 1
    assert (e.line, e.column) == (line, 1)
    cli_run = subprocess.run([str(cli), "check", str(bad)], capture_output=True, text=True)
    assert cli_run.returncode == 2
    assert cli_run.stderr.startswith(f"error: {e}\n")
    assert "\n  " in str(e)  # the offending line is quoted, as on the command line


MALFORMED_TOML = [
    "",  # no name
    "name = ",  # syntax error
    "name = 'x'\n[landscape\nkind='valley2d'",  # unclosed header
    "name = 'x'\nname = 'y'",  # duplicate key
    "name = 'x'\n[landscape]\nkind = 'valley2d'\nepsilon = 0.001\nlambda = []\n[noise]\nkind='isotropic'\ntemperature=0.1",
    "name = 'x'\n[landscape]\nkind = 'mystery'\n[noise]\nkind='isotropic'\ntemperature=0.1",
    "name = '../escape'\n[landscape]\nkind = 'valley2d'\nepsilon = 0.0\nlambda = [1.0]\n[noise]\nkind='isotropic'\ntemperature=0.1",
    "name = 'x'\n[landscape]\nkind = 'valley2d'\nepsilon = 0.0\nlambda = [1.0]\n[noise]\nkind='constant'\nd = [[1.0, 2.0], [0.0, 1.0]]",
    "name = 'x'\n[landscape]\nkind = 'valley2d'\nepsilon = 0.0\nlambda = [1.0]\n[noise]\nkind='isotropic'\ntemperature=0.1\n[fokker_planck]\nx = { min = 0, max = 1, cells = 99999999999 }\ny = { min = 0, max = 1, cells = 4 }",
    "name = 'x'\n[landscape]\nkind = 'valley2d'\nepsilon = 0.0\nlambda = [1.0]\n[noise]\nkind='isotropic'\ntemperature=0.1\n[fokker_planck]\nx = { min = 0, max = 1, cells = -4 }\ny = { min = 0, max = 1, cells = 4 }",
    "name = 'x'\n[landscape]\nkind = 'valley2d'\nepsilon = 0.0\nlambda = [1.0, -1.0]\n[noise]\nkind='isotropic'\ntemperature=0.1\n[fokker_planck]\nx = { min = -3, max = 3, cells = 8 }\ny = { min = 0, max = 1, cells = 4 }",
    "name = 'x'\n[landscape]\nkind = 'valley2d'\nepsilon = 0.0\nlambda = [1.0]\n[noise]\nkind='hessian'\neta=0.1\nsigma=0.1\n[sweep]",
    "name = 'x'\n[landscape]\nkind = 'valley2d'\nepsilon = inf\nlambda = [1.0]\n[noise]\nkind='isotropic'\ntemperature=nan",
    "\x00\x01binary",
    "name = 'x'\n" + "[a]\n" * 3,
]


@pytest.mark.parametrize("text", MALFORMED_TOML)
def test_malformed_toml_raises_scenario_error(text):
    with pytest.raises(fs.ScenarioError) as err:
        fs.Scenario.from_toml(text)
    assert str(err.value).startswith("<string>")


MALFORMED_DICTS = [
    {},
    {"name": 3},
    {"name": "x", 7: 1},
    {"name": "x", "landscape": [1, 2]},
    {"name": "x", "landscape": {"kind": "valley2d", "epsilon": None, "lambda": [1.0]}},
    {"name": "x", "landscape": {"kind": "valley2d", "epsilon": 0.0, "lambda": [object()]}},
    {"name": "x", "seed": -1},
    {"name": "x", "seed": 1.5},
]


@pytest.mark.parametrize("data", MALFORMED_DICTS)
def test_malformed_dicts_raise_scenario_error(data):
    with pytest.raises(fs.ScenarioError):
        fs.Scenario.from_dict(data)


@pytest.mark.parametrize("value", [None, 3, b"toml", ["a"]])
def test_wrong_types_raise_type_errors(value):
    with pytest.raises(TypeError):
        fs.run(value)
    with pytest.raises(TypeError):
        fs.Scenario.from_toml(value)


def test_missing_file_and_bad_arguments():
    with pytest.raises(fs.ScenarioError, match="cannot read the file"):
        fs.Scenario.load("no/such/file.toml")
    sc = fs.Scenario.load(HESSIAN)
    for bad in (0, -1, 10**6):
        with pytest.raises(ValueError, match="threads"):
            fs.run(sc, threads=bad)
    with pytest.raises(OverflowError):
        fs.run(sc, threads=2**70)
    with pytest.raises(TypeError):
        sc.replace([("noise.sigma", 1.0)])
    with pytest.raises(fs.ScenarioError) as err:
        sc.replace({"noise..sigma": 1.0})
    assert err.value.key == "noise..sigma"
    err2 = pickle.loads(pickle.dumps(err.value))
    assert (str(err2), err2.key) == (str(err.value), err.value.key)
