//! Formatting for the image tools: `ls -l` mode strings, dates, sizes,
//! error messages like coreutils'.

/// `drwxr-xr-x` for a mode.
pub fn mode_string(mode: u32) -> String {
    let t = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o010000 => 'p',
        0o020000 => 'c',
        0o060000 => 'b',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let set = mode & bit != 0;
        let special = match i {
            2 => (mode & 0o4000 != 0).then_some(if set { 's' } else { 'S' }),
            5 => (mode & 0o2000 != 0).then_some(if set { 's' } else { 'S' }),
            8 => (mode & 0o1000 != 0).then_some(if set { 't' } else { 'T' }),
            _ => None,
        };
        s.push(special.unwrap_or(if set { *c } else { '-' }));
    }
    s
}

/// The file type as `stat` names it.
pub fn type_name(mode: u32) -> &'static str {
    match mode & 0o170000 {
        0o040000 => "directory",
        0o120000 => "symbolic link",
        0o010000 => "fifo",
        0o020000 => "character special file",
        0o060000 => "block special file",
        0o140000 => "socket",
        _ => "regular file",
    }
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-05-01 12:34:56.000000000 +0000` (UTC).
pub fn full_time(sec: i64, nsec: u32) -> String {
    let (y, m, d) = civil(sec.div_euclid(86400));
    let t = sec.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{nsec:09} +0000",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// `May  1 12:34` (UTC), as `ls -l` shows recent dates.
pub fn short_time(sec: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil(sec.div_euclid(86400));
    let t = sec.rem_euclid(86400);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mon = MONTHS[(m as usize).clamp(1, 12) - 1];
    if (now - sec).abs() < 182 * 86400 {
        format!("{mon} {d:>2} {:02}:{:02}", t / 3600, t / 60 % 60)
    } else {
        format!("{mon} {d:>2}  {y}")
    }
}

/// `1.5M`-style size.
pub fn human(bytes: u64) -> String {
    let units = ["", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}")
    } else if v < 10.0 {
        format!("{:.1}{}", (v * 10.0).ceil() / 10.0, units[i])
    } else {
        format!("{:.0}{}", v.ceil(), units[i])
    }
}

/// An OS error's message without the `(os error N)` suffix.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_dates() {
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o104751), "-rwsr-x--x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(full_time(0, 0), "1970-01-01 00:00:00.000000000 +0000");
        assert_eq!(
            full_time(1_000_000_000, 5),
            "2001-09-09 01:46:40.000000005 +0000"
        );
        assert_eq!(human(1536), "1.5K");
        assert_eq!(human(100), "100");
    }
}
