//! Finding the end of a line, for both request forms: a multibulk header line
//! ([`super::parse`]) and an inline command ([`super::inline`]).

/// Where a line ends.
pub(super) enum Line {
    /// The terminator's offset in the buffer (for `\r`, the byte after it is present too).
    Found(usize),
    /// No terminator yet, and the line may still end within the limit.
    Incomplete,
    /// More than `max` bytes from the line's start and no terminator among them.
    TooLong,
}

/// Looks for `term` in `buf[start..]`, at most `max` bytes past `start`, resuming after the
/// `searched` bytes an earlier call already looked at (and recording how far it got).
/// A `\r` only counts once the byte after it has arrived, as in Redis, which then expects
/// that byte to be `\n`.
pub(super) fn find_line(
    buf: &[u8],
    start: usize,
    term: u8,
    max: usize,
    searched: &mut usize,
) -> Line {
    let window_end = buf.len().min(start.saturating_add(max).saturating_add(1));
    let from = start.saturating_add(*searched).min(window_end);
    match memchr::memchr(term, &buf[from..window_end]) {
        Some(i) if term != b'\r' || from + i + 1 < buf.len() => Line::Found(from + i),
        Some(i) => {
            *searched = from + i - start;
            Line::Incomplete
        }
        None if buf.len() - start > max => Line::TooLong,
        None => {
            *searched = window_end - start;
            Line::Incomplete
        }
    }
}
