//! sway's side of an attached stream, over its IPC (`$SWAYSOCK`): a headless output of the
//! client's mode, created for the stream and taken away after it.

use anyhow::Context;
use punktfunk_core::mode::Mode;
use swayipc::Connection;

/// An output sway made for this stream.
pub struct SwayOutput {
    ipc: Connection,
    pub name: String,
}

fn run(ipc: &mut Connection, command: &str) -> anyhow::Result<()> {
    for outcome in ipc.run_command(command).with_context(|| format!("sway: {command}"))? {
        outcome.with_context(|| format!("sway refused {command:?}"))?;
    }
    Ok(())
}

impl SwayOutput {
    /// Asks sway for a new headless output (`create_output`) and sets it to `mode`.
    pub fn create(mode: Mode) -> anyhow::Result<Self> {
        let mut ipc = Connection::new().context("connecting to sway's IPC ($SWAYSOCK)")?;
        let before: Vec<String> = ipc.get_outputs()?.into_iter().map(|o| o.name).collect();
        run(&mut ipc, "create_output")?;
        let name = ipc
            .get_outputs()?
            .into_iter()
            .map(|o| o.name)
            .find(|n| !before.contains(n))
            .context("sway created no output (only its headless backend can: WLR_BACKENDS=…,headless)")?;
        let mut output = Self { ipc, name };
        output.set_mode(mode)?;
        tracing::info!(output = output.name, %mode, "sway output created");
        Ok(output)
    }

    /// Any mode: a headless output takes custom ones.
    pub fn set_mode(&mut self, mode: Mode) -> anyhow::Result<()> {
        let hz = f64::from(mode.refresh_mhz) / 1000.0;
        run(&mut self.ipc, &format!("output {} mode --custom {}x{}@{hz:.3}Hz", self.name, mode.width, mode.height))
    }
}

impl Drop for SwayOutput {
    /// Unplugs the output (sway 1.8+); where sway cannot, disables it and says so.
    fn drop(&mut self) {
        if run(&mut self.ipc, &format!("output {} unplug", self.name)).is_err() {
            tracing::warn!(output = self.name, "this sway cannot unplug outputs (1.8 can): the output is disabled instead");
            let _ = run(&mut self.ipc, &format!("output {} disable", self.name));
        }
    }
}
