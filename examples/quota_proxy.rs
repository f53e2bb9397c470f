//! The quota model of the tests (`tests/suite/common/quota.rs`, a rule of `tests/suite/common/fault_proxy.rs`)
//! as a program, for the fan-out bench: one implementation for both.
//!
//! usage: quota_proxy --upstream http://127.0.0.1:PORT [--settle-ms 1000] [--rate FAMILY=N]...
//!        [--in-progress OPERATION=N]...
//! Prints `listening on http://127.0.0.1:PORT` and serves until killed. `GET /quota-proxy/stats`
//! answers the counts (calls per operation, throttles, refusals, most in progress);
//! `POST /quota-proxy/reset` zeroes them.

#[allow(dead_code)]
#[path = "../tests/suite/common/quota.rs"]
mod quota;

#[allow(dead_code)]
#[path = "../tests/suite/common/fault_proxy.rs"]
mod fault_proxy;

use std::time::Duration;

fn main() {
    if let Err(e) = run() {
        eprintln!("quota_proxy: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut upstream = None;
    let mut settle = Duration::from_secs(1);
    let mut rates = Vec::new();
    let mut caps = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--upstream" => upstream = Some(value()?),
            "--settle-ms" => {
                let v = value()?;
                settle = Duration::from_millis(v.parse().map_err(|_| format!("--settle-ms {v}: not a number"))?);
            }
            "--rate" => rates.push(pair(&value()?)?),
            "--in-progress" => caps.push(pair(&value()?)?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let upstream = upstream.ok_or("--upstream is required")?;
    let mut model = quota::QuotaModel::aws(settle);
    for (family, rate) in rates {
        model.rates.retain(|(f, _)| *f != family);
        model.rates.push((family, rate));
    }
    for (op, cap) in caps {
        model.in_progress.retain(|(o, _)| *o != op);
        model.in_progress.push((op, cap as usize));
    }
    let proxy = fault_proxy::FaultProxy::start(
        &upstream,
        fault_proxy::Rules {
            quota: Some(model),
            ..fault_proxy::Rules::default()
        },
    );
    println!("listening on {}", proxy.endpoint);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn pair(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s.split_once('=').ok_or(format!("`{s}`: expected NAME=NUMBER"))?;
    let n: f64 = v.parse().map_err(|_| format!("`{s}`: not a number"))?;
    Ok((k.to_string(), n))
}
