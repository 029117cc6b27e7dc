//! Cutting the client's byte stream into whole commands.
//!
//! The session pushes whatever it reads from the socket into a [`Framer`]
//! and then calls [`Framer::poll`] until it returns `Ok(None)` ("need more
//! bytes"). A command is a line, or several lines joined by literals
//! (`{N}` CRLF N-octets); the framer hands out the whole command, literals
//! inline, so the parser never waits for input.
//!
//! Synchronizing literals (`{N}`) need the server's `+` before the client
//! sends the data: the framer reports [`Frame::NeedContinuation`] and, unless
//! the session calls [`Framer::reject_literal`], expects the data next.
//! Non-synchronizing literals (`{N+}`, LITERAL+ / LITERAL-, RFC 7888) are
//! read straight on. Literal8 (`~{N}`, RFC 3516) is framed like a literal.
//!
//! Limits (line length, literal size, command size) are checked here, before
//! anything is buffered past them. Every error leaves the framer in step with
//! the client: a too-long line is skipped to its end, a too-large
//! non-synchronizing literal is read and thrown away along with the rest of
//! its command, and a too-large synchronizing literal is refused before the
//! client sends it.

use super::parse::peek_tag;
use super::types::Tag;

/// Limits enforced while framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerLimits {
    /// Longest command text, excluding literal data, summed over all lines
    /// of one command.
    pub max_line: usize,
    /// Largest single literal (APPENDLIMIT).
    pub max_literal: u64,
    /// `Some(4096)` for LITERAL- (RFC 7888): larger non-synchronizing
    /// literals are refused. `None` for LITERAL+.
    pub max_non_sync_literal: Option<u64>,
    /// Largest command, literals included (bounds MULTIAPPEND).
    pub max_command: u64,
}

impl Default for FramerLimits {
    fn default() -> Self {
        FramerLimits {
            max_line: 64 * 1024,
            max_literal: 50 * 1024 * 1024,
            max_non_sync_literal: None,
            max_command: 100 * 1024 * 1024,
        }
    }
}

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One whole command: its lines joined by CRLF, literals inline, without
    /// the final CRLF. Feed it to [`crate::codec::parse::parse_command`].
    Command(Vec<u8>),
    /// The client announced a synchronizing literal. Answer `+ ...` and keep
    /// polling, or call [`Framer::reject_literal`] and answer `tag NO/BAD`.
    NeedContinuation {
        tag: Option<Tag>,
        literal_size: u64,
        /// `~{N}`: a literal8 (BINARY), which may hold NUL.
        binary: bool,
    },
}

/// A limit was hit. The framer has already resynchronised (or will, by
/// discarding what the client still sends of this command); the session
/// answers and goes on polling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A line exceeded `max_line`. Answer `tag BAD` (or `* BAD` without a
    /// tag); the rest of the line is skipped.
    LineTooLong { tag: Option<Tag> },
    /// A literal larger than `max_literal`, or one that would take the
    /// command past `max_command`. Answer `tag NO [TOOBIG]` (RFC 7889). A
    /// synchronizing literal was not accepted, so the client sends nothing
    /// more for it; a non-synchronizing one is read and discarded with the
    /// rest of its command.
    LiteralTooBig {
        tag: Option<Tag>,
        size: u64,
        synchronizing: bool,
    },
    /// A non-synchronizing literal over the LITERAL- limit. Answer `tag BAD`
    /// (RFC 7888 section 4); its data is discarded.
    NonSyncLiteralTooBig { tag: Option<Tag>, size: u64 },
}

impl FrameError {
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            FrameError::LineTooLong { tag }
            | FrameError::LiteralTooBig { tag, .. }
            | FrameError::NonSyncLiteralTooBig { tag, .. } => tag.as_ref(),
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::LineTooLong { .. } => f.write_str("Command line too long"),
            FrameError::LiteralTooBig { size, .. } => {
                write!(f, "Literal of {size} octets is too large")
            }
            FrameError::NonSyncLiteralTooBig { size, .. } => write!(
                f,
                "Non-synchronizing literal of {size} octets is over the LITERAL- limit"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading command text up to LF.
    Line,
    /// Reading literal data into the command.
    Literal { remaining: u64 },
    /// Skipping to the end of the current line, then back to `Line`.
    SkipLine,
    /// Skipping literal data of a rejected command, then its next line.
    SkipLiteral { remaining: u64 },
    /// Skipping a line of a rejected command; a trailing non-synchronizing
    /// literal is skipped too.
    SkipCommandLine,
}

/// The command framer. Bytes in with [`push`](Framer::push), frames out with
/// [`poll`](Framer::poll) or plain lines with [`poll_line`](Framer::poll_line).
#[derive(Debug)]
pub struct Framer {
    limits: FramerLimits,
    buf: Vec<u8>,
    pos: usize,
    /// How far into `buf[pos..]` has been searched for LF.
    scanned: usize,
    cmd: Vec<u8>,
    /// Command text (not literal data) so far in `cmd`.
    cmd_text: usize,
    state: State,
    /// A NeedContinuation was reported and no literal byte has been read.
    awaiting_sync: bool,
}

impl Framer {
    pub fn new(limits: FramerLimits) -> Framer {
        Framer {
            limits,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            cmd: Vec::new(),
            cmd_text: 0,
            state: State::Line,
            awaiting_sync: false,
        }
    }

    pub fn limits(&self) -> &FramerLimits {
        &self.limits
    }

    /// Changes limits, e.g. after login when APPENDLIMIT is known.
    pub fn set_limits(&mut self, limits: FramerLimits) {
        self.limits = limits;
    }

    /// Adds bytes read from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet framed. After STARTTLS these must be
    /// empty (a client that pipelines past STARTTLS is attacking the
    /// session; see RFC 3501 6.2.1 and CVE-2011-0411).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos + self.cmd.len()
    }

    /// Drops everything buffered (after STARTTLS, or on error).
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
        self.scanned = 0;
        self.reset_cmd();
        self.state = State::Line;
    }

    /// Refuses the synchronizing literal just reported by
    /// [`Frame::NeedContinuation`]: the partial command is dropped and the
    /// client, which waits for `+`, is expected to start a new command.
    pub fn reject_literal(&mut self) {
        if self.awaiting_sync {
            self.awaiting_sync = false;
            self.reset_cmd();
            self.state = State::Line;
        }
    }

    fn reset_cmd(&mut self) {
        self.cmd = Vec::new();
        self.cmd_text = 0;
        self.awaiting_sync = false;
    }

    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            if self.buf.capacity() > 16 * 1024 {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.pos = 0;
            self.scanned = 0;
        } else if self.pos > 4096 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Finds the next LF in `buf[pos..]`, remembering how far it looked.
    fn find_lf(&mut self) -> Option<usize> {
        let start = self.pos + self.scanned;
        match self.buf[start..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.scanned = 0;
                Some(start + i)
            }
            None => {
                self.scanned = self.buf.len() - self.pos;
                None
            }
        }
    }

    fn tag_of_current(&self) -> Option<Tag> {
        if self.cmd.is_empty() {
            peek_tag(&self.buf[self.pos..])
        } else {
            peek_tag(&self.cmd)
        }
    }

    /// Reads one plain line (an AUTHENTICATE response or IDLE's `DONE`),
    /// without its CRLF. Only valid between commands.
    pub fn poll_line(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let r = self.poll_line_inner();
        self.compact();
        r
    }

    fn poll_line_inner(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            match self.state {
                State::Line => {}
                State::SkipLine => {
                    if !self.skip_line() {
                        return Ok(None);
                    }
                    continue;
                }
                _ => {
                    // Mid-command: a plain line is not expected here.
                    debug_assert!(false, "poll_line while a command is being framed");
                    return Ok(None);
                }
            }
            let Some(lf) = self.find_lf() else {
                if self.buf.len() - self.pos > self.limits.max_line {
                    self.state = State::SkipLine;
                    return Err(FrameError::LineTooLong { tag: None });
                }
                return Ok(None);
            };
            let mut line = &self.buf[self.pos..lf];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            let too_long = line.len() > self.limits.max_line;
            let line = line.to_vec();
            self.pos = lf + 1;
            if too_long {
                return Err(FrameError::LineTooLong { tag: None });
            }
            return Ok(Some(line));
        }
    }

    /// Skips to just past the next LF; false when more bytes are needed.
    fn skip_line(&mut self) -> bool {
        match self.find_lf() {
            Some(lf) => {
                self.pos = lf + 1;
                self.state = State::Line;
                true
            }
            None => {
                self.pos = self.buf.len();
                self.scanned = 0;
                false
            }
        }
    }

    /// Frames the next command. `Ok(None)`: push more bytes.
    pub fn poll(&mut self) -> Result<Option<Frame>, FrameError> {
        let r = self.poll_inner();
        self.compact();
        r
    }

    fn poll_inner(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            match self.state {
                State::SkipLine => {
                    if !self.skip_line() {
                        return Ok(None);
                    }
                }
                State::SkipLiteral { remaining } => {
                    let avail = (self.buf.len() - self.pos) as u64;
                    let n = avail.min(remaining);
                    self.pos += n as usize;
                    if n == remaining {
                        self.state = State::SkipCommandLine;
                    } else {
                        self.state = State::SkipLiteral {
                            remaining: remaining - n,
                        };
                        return Ok(None);
                    }
                }
                State::SkipCommandLine => {
                    let Some(lf) = self.find_lf() else {
                        // Keep at most a literal marker's worth of the line.
                        let keep = 32.min(self.buf.len() - self.pos);
                        self.pos = self.buf.len() - keep;
                        self.scanned = keep;
                        return Ok(None);
                    };
                    let line = strip_cr(&self.buf[self.pos..lf]);
                    self.state = match literal_suffix(line) {
                        Some(lit) if lit.non_sync => State::SkipLiteral {
                            remaining: lit.size,
                        },
                        _ => State::Line,
                    };
                    self.pos = lf + 1;
                }
                State::Literal { remaining } => {
                    let avail = (self.buf.len() - self.pos) as u64;
                    let n = avail.min(remaining) as usize;
                    if n > 0 {
                        self.awaiting_sync = false;
                    }
                    self.cmd
                        .extend_from_slice(&self.buf[self.pos..self.pos + n]);
                    self.pos += n;
                    let remaining = remaining - n as u64;
                    if remaining == 0 {
                        self.state = State::Line;
                    } else {
                        self.state = State::Literal { remaining };
                        return Ok(None);
                    }
                }
                State::Line => {
                    let Some(lf) = self.find_lf() else {
                        if self.cmd_text + (self.buf.len() - self.pos) > self.limits.max_line {
                            let tag = self.tag_of_current();
                            self.reset_cmd();
                            self.state = State::SkipLine;
                            return Err(FrameError::LineTooLong { tag });
                        }
                        return Ok(None);
                    };
                    let line_end = lf;
                    let line = strip_cr(&self.buf[self.pos..line_end]);
                    if line.is_empty() && self.cmd.is_empty() {
                        // Stray empty line between commands: ignore it.
                        self.pos = lf + 1;
                        continue;
                    }
                    if self.cmd_text + line.len() > self.limits.max_line {
                        let tag = self.tag_of_current();
                        if let Some(lit) = literal_suffix(line).filter(|l| l.non_sync) {
                            self.state = State::SkipLiteral {
                                remaining: lit.size,
                            };
                        }
                        self.reset_cmd();
                        self.pos = lf + 1;
                        return Err(FrameError::LineTooLong { tag });
                    }
                    let lit = literal_suffix(line);
                    let line_len = line.len();
                    self.cmd
                        .extend_from_slice(&self.buf[self.pos..self.pos + line_len]);
                    self.cmd_text += line_len;
                    self.pos = lf + 1;
                    let Some(lit) = lit else {
                        let cmd = std::mem::take(&mut self.cmd);
                        self.reset_cmd();
                        return Ok(Some(Frame::Command(cmd)));
                    };
                    self.cmd.extend_from_slice(b"\r\n");
                    self.cmd_text += 2;
                    let tag = peek_tag(&self.cmd);
                    let total = (self.cmd.len() as u64).saturating_add(lit.size);
                    if lit.size > self.limits.max_literal || total > self.limits.max_command {
                        self.reset_cmd();
                        self.state = if lit.non_sync {
                            State::SkipLiteral {
                                remaining: lit.size,
                            }
                        } else {
                            State::Line
                        };
                        return Err(FrameError::LiteralTooBig {
                            tag,
                            size: lit.size,
                            synchronizing: !lit.non_sync,
                        });
                    }
                    if lit.non_sync {
                        if let Some(max) = self.limits.max_non_sync_literal {
                            if lit.size > max {
                                self.reset_cmd();
                                self.state = State::SkipLiteral {
                                    remaining: lit.size,
                                };
                                return Err(FrameError::NonSyncLiteralTooBig {
                                    tag,
                                    size: lit.size,
                                });
                            }
                        }
                        self.cmd.reserve(lit.size.min(1 << 20) as usize);
                        self.state = State::Literal {
                            remaining: lit.size,
                        };
                    } else {
                        self.state = State::Literal {
                            remaining: lit.size,
                        };
                        if lit.size > 0 {
                            self.awaiting_sync = true;
                        }
                        return Ok(Some(Frame::NeedContinuation {
                            tag,
                            literal_size: lit.size,
                            binary: lit.binary,
                        }));
                    }
                }
            }
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

struct LiteralMarker {
    size: u64,
    non_sync: bool,
    binary: bool,
}

/// Recognises `{N}`, `{N+}`, `{N-}` or `~{N...}` at the end of a line.
fn literal_suffix(line: &[u8]) -> Option<LiteralMarker> {
    let inner = line.strip_suffix(b"}")?;
    let (inner, non_sync) = match inner.last() {
        Some(b'+') | Some(b'-') => (&inner[..inner.len() - 1], true),
        _ => (inner, false),
    };
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits)
        .ok()?
        .parse::<u64>()
        .unwrap_or(u64::MAX);
    let binary = open > 0 && inner[open - 1] == b'~';
    Some(LiteralMarker {
        size,
        non_sync,
        binary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> Framer {
        Framer::new(FramerLimits {
            max_line: 100,
            max_literal: 1000,
            max_non_sync_literal: None,
            max_command: 2000,
        })
    }

    fn cmd(f: &mut Framer) -> Vec<u8> {
        match f.poll() {
            Ok(Some(Frame::Command(c))) => c,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[test]
    fn simple_lines_and_pipelining() {
        let mut f = framer();
        f.push(b"a1 NOOP\r\na2 CAPABILITY\na3 LOG");
        assert_eq!(cmd(&mut f), b"a1 NOOP");
        assert_eq!(cmd(&mut f), b"a2 CAPABILITY");
        assert_eq!(f.poll(), Ok(None));
        f.push(b"OUT\r\n");
        assert_eq!(cmd(&mut f), b"a3 LOGOUT");
        assert_eq!(f.poll(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn byte_by_byte() {
        let mut f = framer();
        let input = b"a LOGIN {3}\r\nbob {4+}\r\npass\r\n";
        let mut events = Vec::new();
        for b in input {
            f.push(&[*b]);
            while let Some(e) = f.poll().unwrap() {
                events.push(e);
            }
        }
        assert_eq!(
            events,
            vec![
                Frame::NeedContinuation {
                    tag: Some(Tag::new("a").unwrap()),
                    literal_size: 3,
                    binary: false
                },
                Frame::Command(b"a LOGIN {3}\r\nbob {4+}\r\npass".to_vec())
            ]
        );
    }

    #[test]
    fn sync_literal_needs_continuation() {
        let mut f = framer();
        f.push(b"A003 APPEND saved-messages (\\Seen) {5}\r\n");
        assert_eq!(
            f.poll(),
            Ok(Some(Frame::NeedContinuation {
                tag: Some(Tag::new("A003").unwrap()),
                literal_size: 5,
                binary: false
            }))
        );
        assert_eq!(f.poll(), Ok(None));
        f.push(b"hello\r\n");
        assert_eq!(
            cmd(&mut f),
            b"A003 APPEND saved-messages (\\Seen) {5}\r\nhello"
        );
    }

    #[test]
    fn literal_containing_crlf_and_braces() {
        let mut f = framer();
        f.push(b"a APPEND x {10+}\r\n{3}\r\nab\r\n}\r\na NOOP\r\n");
        assert_eq!(cmd(&mut f), b"a APPEND x {10+}\r\n{3}\r\nab\r\n}");
        assert_eq!(cmd(&mut f), b"a NOOP");
    }

    #[test]
    fn rejected_sync_literal() {
        let mut f = framer();
        f.push(b"a LOGIN {3}\r\n");
        assert!(matches!(f.poll(), Ok(Some(Frame::NeedContinuation { .. }))));
        f.reject_literal();
        f.push(b"b NOOP\r\n");
        assert_eq!(cmd(&mut f), b"b NOOP");
    }

    #[test]
    fn too_big_sync_literal_is_refused() {
        let mut f = framer();
        f.push(b"a APPEND INBOX {5000}\r\nb NOOP\r\n");
        assert_eq!(
            f.poll(),
            Err(FrameError::LiteralTooBig {
                tag: Some(Tag::new("a").unwrap()),
                size: 5000,
                synchronizing: true
            })
        );
        assert_eq!(cmd(&mut f), b"b NOOP");
    }

    #[test]
    fn too_big_non_sync_literal_is_skipped() {
        let mut f = framer();
        f.push(b"a APPEND INBOX {1500+}\r\n");
        assert!(matches!(
            f.poll(),
            Err(FrameError::LiteralTooBig {
                synchronizing: false,
                size: 1500,
                ..
            })
        ));
        f.push(&[b'x'; 1000]);
        assert_eq!(f.poll(), Ok(None));
        f.push(&[b'\n'; 500]);
        // A MULTIAPPEND continuation with another literal is skipped too.
        f.push(b" {3+}\r\nabc\r\nb NOOP\r\n");
        assert_eq!(cmd(&mut f), b"b NOOP");
    }

    #[test]
    fn literal_minus_limit() {
        let mut f = Framer::new(FramerLimits {
            max_non_sync_literal: Some(4),
            ..FramerLimits::default()
        });
        f.push(b"a LOGIN {5+}\r\nhello x\r\nb NOOP\r\n");
        assert!(matches!(
            f.poll(),
            Err(FrameError::NonSyncLiteralTooBig { size: 5, .. })
        ));
        assert_eq!(cmd(&mut f), b"b NOOP");
    }

    #[test]
    fn line_too_long_resyncs() {
        let mut f = framer();
        f.push(b"toolong ");
        f.push(&[b'x'; 200]);
        assert_eq!(
            f.poll(),
            Err(FrameError::LineTooLong {
                tag: Some(Tag::new("toolong").unwrap())
            })
        );
        f.push(&[b'y'; 300]);
        assert_eq!(f.poll(), Ok(None));
        f.push(b"\r\nc NOOP\r\n");
        assert_eq!(cmd(&mut f), b"c NOOP");
    }

    #[test]
    fn many_literals_count_against_line_limit() {
        let mut f = framer();
        let mut input = b"a X".to_vec();
        for _ in 0..30 {
            input.extend_from_slice(b" {1+}\r\nx");
        }
        input.extend_from_slice(b"\r\nb NOOP\r\n");
        f.push(&input);
        assert!(matches!(f.poll(), Err(FrameError::LineTooLong { .. })));
        // The rest of the command, literals included, is skipped.
        assert_eq!(cmd(&mut f), b"b NOOP");
    }

    #[test]
    fn command_size_limit() {
        let mut f = framer();
        f.push(b"a APPEND x {900+}\r\n");
        f.push(&[b'a'; 900]);
        f.push(b" {900+}\r\n");
        f.push(&[b'b'; 900]);
        f.push(b" {900}\r\n");
        assert!(matches!(
            f.poll(),
            Err(FrameError::LiteralTooBig {
                synchronizing: true,
                ..
            })
        ));
    }

    #[test]
    fn huge_literal_size_does_not_overflow() {
        let mut f = framer();
        f.push(b"a APPEND x {47777777771111111111}\r\nb NOOP\r\n");
        assert!(matches!(
            f.poll(),
            Err(FrameError::LiteralTooBig { size: u64::MAX, .. })
        ));
        assert_eq!(cmd(&mut f), b"b NOOP");
    }

    #[test]
    fn literal8_marker() {
        let mut f = framer();
        f.push(b"a APPEND x ~{3}\r\n");
        assert!(matches!(
            f.poll(),
            Ok(Some(Frame::NeedContinuation { binary: true, .. }))
        ));
        f.push(b"\0\0\0\r\n");
        assert_eq!(cmd(&mut f), b"a APPEND x ~{3}\r\n\0\0\0");
    }

    #[test]
    fn plain_lines() {
        let mut f = framer();
        f.push(b"dGVzdA==\r\nDONE\r\n");
        assert_eq!(f.poll_line(), Ok(Some(b"dGVzdA==".to_vec())));
        assert_eq!(f.poll_line(), Ok(Some(b"DONE".to_vec())));
        assert_eq!(f.poll_line(), Ok(None));
        f.push(&[b'z'; 300]);
        assert_eq!(f.poll_line(), Err(FrameError::LineTooLong { tag: None }));
        f.push(b"zz\r\nDONE\r\n");
        assert_eq!(f.poll_line(), Ok(Some(b"DONE".to_vec())));
    }

    #[test]
    fn zero_literal_needs_no_data() {
        let mut f = framer();
        f.push(b"a LOGIN {0}\r\n {0+}\r\n\r\n");
        assert!(matches!(
            f.poll(),
            Ok(Some(Frame::NeedContinuation {
                literal_size: 0,
                ..
            }))
        ));
        assert_eq!(cmd(&mut f), b"a LOGIN {0}\r\n {0+}\r\n");
    }
}
