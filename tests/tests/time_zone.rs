//! tz_ctime, tz_gmtoff and tz_name follow the local time zone (`TZ`), as
//! stap's do; ctime() without an argument is now.

use rstap_tests::{rstap, text};
use std::process::{Command, Output};

fn run_in_zone(tz: &str, args: &[&str]) -> Output {
    Command::new(rstap())
        .env("TZ", tz)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rstap: {e}"))
}

const USER: &str = r#"probe begin {
  println(tz_ctime(0)); println(tz_ctime(1000000000))
  println(tz_gmtoff(), " ", tz_name(), " ", ctime(0))
  now = gettimeofday_s(); c = ctime(); println(c == ctime(now) || c == ctime(now + 1))
  exit()
}"#;

#[test]
fn tz_ctime_shows_the_local_time_and_zone_name() {
    // POSIX zone strings need no zone files: IST is 5:30 east of UTC, PST
    // 8 hours west.
    for (tz, expected) in [
        (
            "IST-5:30",
            "Thu Jan  1 05:30:00 1970 IST\nSun Sep  9 07:16:40 2001 IST\n-19800 IST Thu Jan  1 00:00:00 1970\n1\n",
        ),
        (
            "PST8",
            "Wed Dec 31 16:00:00 1969 PST\nSat Sep  8 17:46:40 2001 PST\n28800 PST Thu Jan  1 00:00:00 1970\n1\n",
        ),
        (
            "UTC0",
            "Thu Jan  1 00:00:00 1970 UTC\nSun Sep  9 01:46:40 2001 UTC\n0 UTC Thu Jan  1 00:00:00 1970\n1\n",
        ),
    ] {
        let out = run_in_zone(tz, &["-e", USER]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), expected, "TZ={tz}");
    }
}
