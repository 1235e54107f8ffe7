//! How durations and sizes are written for people: `1:23`, `1:02:05`, `1.4 MB`.
use std::time::Duration;

/// `83.4 s` → `1:23`, `3725 s` → `1:02:05`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `1.4 MB`, `512 KB`: sizes for summaries.
pub fn bytes(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else {
        format!("{:.0} KB", n / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(clock(Duration::from_secs_f64(83.4)), "1:23");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(bytes(540_000.0), "540 KB");
        assert_eq!(bytes(1_384_000.0), "1.4 MB");
        assert_eq!(bytes(2_500_000_000.0), "2.50 GB");
    }
}
