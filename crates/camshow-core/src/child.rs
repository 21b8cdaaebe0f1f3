//! Child processes (packaging tools, FFmpeg) that the user can stop.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `cmd` to completion like [`Command::output`], polling `stop` every
/// 50 ms: when it turns true the child is killed and reaped, and `Ok(None)`
/// is returned. Its standard input is closed.
///
/// # Errors
/// The child could not be started or waited for.
pub fn output_until(cmd: &mut Command, stop: &dyn Fn() -> bool) -> std::io::Result<Option<Output>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let status = loop {
        if stop() {
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        match child.try_wait()? {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    Ok(Some(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_child_is_killed_and_reaped() {
        let t = std::time::Instant::now();
        let out = output_until(Command::new("sleep").arg("30"), &|| {
            t.elapsed() > Duration::from_millis(100)
        })
        .unwrap();
        assert!(out.is_none());
        assert!(t.elapsed() < Duration::from_secs(10), "not killed");
    }

    #[test]
    fn a_finished_child_gives_its_output() {
        let out = output_until(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            &|| false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }
}
