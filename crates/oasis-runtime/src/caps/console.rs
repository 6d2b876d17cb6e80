//! The `console` kind: named log streams (ABI.md section 3), and the standard
//! streams every tenant has without a grant (WASI fds 1 and 2, section 4).
//!
//! A log stream delivers whole lines to the tenant's [`OutputSink`]; the
//! unfinished last line is held with the handle (at most
//! [`MAX_LINE`](crate::output::MAX_LINE) bytes, see [`LineBuffer`]) and
//! delivered when the handle is closed or the tenant ends. Because it is held
//! with the handle, it moves with the tenant's context to a new instance: a
//! swap neither loses nor repeats it. The standard streams go to the sink as
//! the app wrote them.
//!
//! [`OutputSink`]: crate::OutputSink

use alloc::string::{String, ToString};
use oasis_abi::{Status, kind, name};

use super::Capability;
use crate::context::TenantCtx;
use crate::output::{LineBuffer, StdStream};
use crate::platform::DriverError;

/// The kind's name, as granted and as `cap_open` spells it.
pub const KIND: &str = kind::CONSOLE;

/// An open log stream.
#[derive(Debug)]
pub struct LogStream {
    name: String,
    line: LineBuffer,
}

impl LogStream {
    /// The stream's name (`app` for plain `console`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The unfinished last line held so far.
    pub fn pending(&self) -> &[u8] {
        self.line.pending()
    }
}

/// The log stream `console` (no argument: the default stream) or
/// `console:STREAM` opens.
pub fn parse(arg: Option<&str>) -> Result<LogStream, Status> {
    let stream = match arg {
        None => name::DEFAULT_STREAM,
        Some(s) if name::is_valid_stream(s) => s,
        Some(_) => return Err(Status::Invalid),
    };
    Ok(LogStream { name: stream.to_string(), line: LineBuffer::new() })
}

/// `console_write`: appends `data` to the stream `handle` names and delivers
/// every line it completes.
///
/// A sink that fails loses those lines, not the guest's call: the ABI has no
/// status for "the operator's terminal is gone", and the app cannot help it.
pub fn write(ctx: &mut TenantCtx, handle: u32, data: &[u8]) -> Result<(), Status> {
    let Capability::Console(stream) = ctx.caps.get_mut(handle)? else {
        return Err(Status::WrongKind);
    };
    let output = &*ctx.output;
    let name = &stream.name;
    stream.line.push(data, |line| {
        let _ = output.log_line(name, line);
    });
    ctx.counters.bytes_out += data.len() as u64;
    Ok(())
}

/// `fd_write` to fd 1 or 2: `data` goes to the sink as written.
pub fn write_std(ctx: &mut TenantCtx, stream: StdStream, data: &[u8]) -> Result<(), DriverError> {
    ctx.output.write(stream, data)?;
    ctx.counters.bytes_out += data.len() as u64;
    Ok(())
}

/// A closed stream delivers its unfinished last line.
pub(crate) fn release(ctx: &mut TenantCtx, mut stream: LogStream) {
    if let Some(rest) = stream.line.take() {
        let _ = ctx.output.log_line(&stream.name, &rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ctx_with;
    use alloc::vec;

    #[test]
    fn stream_names_are_checked() {
        assert_eq!(parse(None).unwrap().name(), "app");
        assert_eq!(parse(Some("access")).unwrap().name(), "access");
        for bad in ["", "bad name", "a/b", &"x".repeat(33)] {
            assert_eq!(parse(Some(bad)).unwrap_err(), Status::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn whole_lines_are_delivered_and_the_rest_when_closed() {
        let (mut ctx, rec) = ctx_with(&["console"]);
        let h = super::super::open(&mut ctx, "console:access").unwrap();
        write(&mut ctx, h, b"a\nb").unwrap();
        write(&mut ctx, h, b"c\npartial").unwrap();
        assert_eq!(rec.lines(), ["[access]a", "[access]bc"]);
        super::super::close(&mut ctx, h).unwrap();
        assert_eq!(rec.lines(), ["[access]a", "[access]bc", "[access]partial"]);
        assert_eq!(ctx.counters().bytes_out, 12);
    }

    #[test]
    fn long_lines_are_delivered_in_bounded_pieces() {
        let (mut ctx, rec) = ctx_with(&["console"]);
        let h = super::super::open(&mut ctx, "console").unwrap();
        write(&mut ctx, h, &vec![b'x'; 40000]).unwrap();
        ctx.release_all();
        let lens: alloc::vec::Vec<usize> = rec.lines().iter().map(|l| l.len() - "[app]".len()).collect();
        assert_eq!(lens, [16384, 16384, 40000 - 2 * 16384]);
    }

    #[test]
    fn only_console_handles_take_log_lines_and_stdio_needs_no_grant() {
        let (mut ctx, rec) = ctx_with(&["console", "clock"]);
        let clock = super::super::open(&mut ctx, "clock:wall").unwrap();
        assert_eq!(write(&mut ctx, clock, b"x\n").unwrap_err(), Status::WrongKind);
        assert_eq!(write(&mut ctx, 77, b"x\n").unwrap_err(), Status::BadHandle);
        let (mut bare, bare_rec) = ctx_with(&[]);
        write_std(&mut bare, StdStream::Stderr, b"oops").unwrap();
        assert_eq!(bare_rec.lines(), ["stderr:oops"]);
        assert!(rec.lines().is_empty());
    }
}
