use flatscape::fp;
use flatscape::landscape::Valley2d;
use flatscape::noise::Noise;
use flatscape::scenario::*;
fn main() {
    let args: Vec<f64> = std::env::args().skip(1).map(|s| s.parse().unwrap()).collect();
    let (nx, ny, yh, sigma) = (args[0] as usize, args[1] as usize, args[2], args[3]);
    let valley = Valley2d::paper();
    let noise = Noise::Hessian { eta: 0.01, sigma, power: 2.0 };
    let cfg = FokkerPlanckConfig { x: AxisConfig{min:-1.6,max:1.6,cells:nx}, y: AxisConfig{min:-yh,max:yh,cells:ny}, steady: true, t_end: 0.0, dt: 0.01, initial: None, snapshots: vec![], cross_diffusion: CrossDiffusionScheme::Central };
    let t = std::time::Instant::now();
    let r = fp::run(&valley, &noise, &cfg, false).unwrap();
    let g = r.grid;
    let (kmin, vmin) = r.density.iter().enumerate().fold((0, f64::INFINITY), |a, (k, &v)| if v < a.1 { (k, v) } else { a });
    println!("{:.3}s mode {:.4} neg {:e} min {:e} at x={:.3} y={:.3}, residual {:e} maxP {:e}", t.elapsed().as_secs_f64(), r.summary.mode_abs_x, r.summary.negative_mass, vmin, g.x(kmin / g.ny), g.y(kmin % g.ny), r.summary.steady_residual.unwrap(), r.density.iter().cloned().fold(0./0., f64::max));
}
