//! Progress of the download and write: an indicatif bar when stderr is a terminal, plain lines
//! every few seconds otherwise (a serial console log, the journal).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often plain lines are printed.
const LINE_EVERY: Duration = Duration::from_secs(10);

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

/// One progress display.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    total: Option<u64>,
    last_line: Instant,
}

#[derive(Debug)]
enum Mode {
    Quiet,
    Lines,
    Bar(ProgressBar),
}

impl Progress {
    /// Progress over `total` bytes of download (if known), drawn as fits stderr.
    pub fn new(total: Option<u64>) -> Self {
        let mode = if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            // A serial console is slow: redraw once a second at most.
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(1));
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                    .expect("template is valid")
                    .progress_chars("=> "),
            );
            Mode::Bar(bar)
        } else {
            Mode::Lines
        };
        Progress {
            mode,
            total,
            last_line: Instant::now(),
        }
    }

    /// No output (tests).
    pub fn quiet() -> Self {
        Progress {
            mode: Mode::Quiet,
            total: None,
            last_line: Instant::now(),
        }
    }

    fn line(&self, received: u64, written: u64) -> String {
        match self.total {
            Some(t) if t > 0 => format!(
                "coreos-install: read {} of {} ({}%), wrote {}",
                human(received),
                human(t),
                received * 100 / t,
                human(written)
            ),
            _ => format!(
                "coreos-install: read {}, wrote {}",
                human(received),
                human(written)
            ),
        }
    }

    /// `received` bytes of the stream read, `written` bytes of the image written.
    pub fn update(&mut self, received: u64, written: u64) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Lines => {
                if self.last_line.elapsed() >= LINE_EVERY {
                    eprintln!("{}", self.line(received, written));
                    self.last_line = Instant::now();
                }
            }
            Mode::Bar(bar) => {
                bar.set_position(received);
                bar.set_message(format!("wrote {}", human(written)));
            }
        }
    }

    /// The stream is done.
    pub fn finish(&mut self, received: u64, written: u64) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("{}", self.line(received, written)),
            Mode::Bar(bar) => {
                bar.set_position(received);
                bar.finish_with_message(format!("wrote {}", human(written)));
            }
        }
    }

    /// The stream failed: leave the bar where it is.
    pub fn abandon(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_how_far_the_install_got() {
        let p = Progress {
            mode: Mode::Lines,
            total: Some(400 << 20),
            last_line: Instant::now(),
        };
        assert_eq!(
            p.line(100 << 20, 3 << 30),
            "coreos-install: read 100.0 MiB of 400.0 MiB (25%), wrote 3.00 GiB"
        );
        let p = Progress {
            mode: Mode::Lines,
            total: None,
            last_line: Instant::now(),
        };
        assert_eq!(
            p.line(1 << 20, 2 << 20),
            "coreos-install: read 1.0 MiB, wrote 2.0 MiB"
        );
    }
}
