//! Sampler throughput per CPU-second (walker-steps / user+sys time of the process), steadier
//! than wall time on a shared machine, and per wall-second; the same plans as
//! benches/sampler.rs. `normals` times the Gaussian generator alone (AVX-512 machines only).
//! usage: sampler_cpu [2d|langevin|exact|gd|nd|normals] [reps] [threads]
use flatscape::config::NoProgress;
use flatscape::landscape::valley_nd::ValleyNdSpec;
use flatscape::landscape::{Landscape, Valley2d};
use flatscape::noise::Noise;
use flatscape::sampler::{self, SamplerConfig, SamplerKind, SamplerPlan};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("2d");
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let noise = Noise::Hessian {
        eta: 0.01,
        sigma: 0.2,
        power: 2.0,
    };
    let paper = Landscape::Valley2d(Valley2d::paper());
    let (land, cfg) = match which {
        "nd" => (
            Landscape::Valley(ValleyNdSpec {
                n_s: 5,
                n_f: 100,
                seed: Some(1),
                ..ValleyNdSpec::default()
            }),
            SamplerConfig::new(SamplerKind::Sgd, 16, 4000, 2000, vec![0.1, 1.0]),
        ),
        "langevin" => (
            paper,
            SamplerConfig {
                dt: Some(0.01),
                ..SamplerConfig::new(SamplerKind::Langevin, 2048, 20000, 10000, vec![1.0, 0.1])
            },
        ),
        "gd" => (
            paper,
            SamplerConfig::new(SamplerKind::Gd, 2048, 20000, 10000, vec![1.0, 0.1]),
        ),
        "normals" => {
            let keys = std::array::from_fn(|l| sampler::rng::stream_key(1, 0, l as u64));
            let mut rng = sampler::rng::LaneRng::new(keys);
            let mut buf = vec![0.0; 1 << 12];
            for _ in 0..reps {
                let c0 = cpu_seconds();
                let mut s = 0.0;
                // SAFETY: this machine has AVX-512 (the probe is for it).
                unsafe { fill_many(&mut rng, &mut buf, &mut s) };
                let c = cpu_seconds() - c0;
                println!(
                    "normals: {:.3e} per CPU-second ({s})",
                    20_000.0 * 4096.0 / c
                );
            }
            return;
        }
        "exact" => (
            paper,
            SamplerConfig::new(
                SamplerKind::SgdExactShift,
                2048,
                20000,
                10000,
                vec![1.0, 0.1],
            ),
        ),
        _ => (
            paper,
            SamplerConfig::new(SamplerKind::Sgd, 2048, 20000, 10000, vec![1.0, 0.1]),
        ),
    };
    let plan = SamplerPlan::new(&cfg, &land, &noise, 1).expect("valid plan");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let work = (cfg.walkers * cfg.steps) as f64;
    let (mut best, mut best_wall) = (0.0f64, 0.0f64);
    for _ in 0..reps {
        let (c0, w0) = (cpu_seconds(), std::time::Instant::now());
        let out = pool.install(|| sampler::run(&plan, None, &NoProgress).expect("runs"));
        let (c, w) = (cpu_seconds() - c0, w0.elapsed().as_secs_f64());
        std::hint::black_box(&out);
        let r = work / c;
        best = best.max(r);
        best_wall = best_wall.max(work / w);
        println!(
            "{which}: {:.3e} walker-steps per CPU-second ({:.3e} per wall-second)",
            r,
            work / w
        );
    }
    println!(
        "{which}: best {best:.3e} per CPU-second, {best_wall:.3e} per wall-second ({threads} threads)"
    );
}

#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn fill_many(rng: &mut sampler::rng::LaneRng, buf: &mut [f64], s: &mut f64) {
    for _ in 0..20_000 {
        rng.fill_normals(buf);
        *s += buf[7];
    }
}
