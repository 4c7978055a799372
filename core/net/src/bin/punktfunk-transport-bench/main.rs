//! `punktfunk-transport-bench`: the punktfunk/1 data plane against plain UDP, two processes
//! on loopback (figures in BENCHMARKS.md). A benchmark, not part of the host: the daemon
//! links none of it.

mod bench;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "The punktfunk/1 data plane against plain UDP, two processes on loopback")]
struct Args {
    /// Target bitrates in Gbit/s.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 1.0, 1.4, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0])]
    rates: Vec<f64>,
    /// Seconds per run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Random loss (percent) for the extra punktfunk/1 runs; 0 skips them.
    #[arg(long, default_value_t = 1.0)]
    loss: f64,
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Role {
    /// The receiving process (this binary started again by the sending one).
    #[command(hide = true)]
    Receive {
        #[arg(long)]
        mode: bench::Mode,
        #[arg(long)]
        seconds: f64,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.role {
        Some(Role::Receive { mode, seconds }) => bench::receive(mode, seconds),
        None => bench::transport(&args.rates, args.seconds, args.loss),
    }
}
