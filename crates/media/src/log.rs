//! FFmpeg's log, kept off the terminal but not thrown away: its last error line explains a failure.
//!
//! FFmpeg reports most failures as a bare errno ("Invalid argument") and says
//! why only in its log ("opus only supported in MP4."). The callback installed
//! here prints nothing (unless `STYLIZE_FFMPEG_LOG` is set) and keeps, per
//! thread, the last error-level line; [`reason`] appends it to the error text.
//! Per thread, because a reader and a writer often fail on different threads at
//! once and each must explain its own failure; a line FFmpeg logs from one of its
//! own worker threads (frame-threaded decoding) is therefore not seen, which
//! only costs detail on a damaged frame the reader reports anyway.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg_next::ffi;

/// How the C `va_list` reaches a callback, as the bindings spell it: x86-64
/// passes a pointer to its one-element array; other ABIs pass `va_list` itself.
#[cfg(target_arch = "x86_64")]
type VaList = *mut ffi::__va_list_tag;
#[cfg(not(target_arch = "x86_64"))]
type VaList = ffi::va_list;

/// Longest line kept; FFmpeg's own lines are far shorter, a runaway one is cut here.
const MAX_LINE: usize = 400;

static ECHO: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct Captured {
    /// An error line FFmpeg is still building from several calls (no newline yet).
    partial: String,
    last: Option<String>,
}

thread_local! {
    static CAPTURED: RefCell<Captured> = RefCell::new(Captured::default());
}

/// Routes FFmpeg's log through [`capture`]; `echo` also prints error lines to stderr.
pub(crate) fn install(echo: bool) {
    ECHO.store(echo, Ordering::Relaxed);
    // SAFETY: `capture` has the callback's C signature and is safe to call from any thread.
    unsafe { ffi::av_log_set_callback(Some(capture)) };
}

/// Forgets earlier lines on this thread: called as an operation starts, so a
/// failure is explained only by what FFmpeg said during it.
pub(crate) fn clear() {
    let _ = CAPTURED.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.partial.clear();
            c.last = None;
        }
    });
}

/// `err`, followed by FFmpeg's last error line on this thread when there is one (taken, not kept).
pub(crate) fn reason(err: impl Display) -> String {
    let err = err.to_string();
    let last = CAPTURED
        .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.last.take()))
        .ok()
        .flatten();
    match last {
        Some(line) if !line.is_empty() && !err.contains(&line) => format!("{err}; {line}"),
        _ => err,
    }
}

/// The log callback. It must never unwind into C: no indexing, no `expect`,
/// thread-local access through the non-panicking `try_` forms.
unsafe extern "C" fn capture(avcl: *mut c_void, level: c_int, fmt: *const c_char, vl: VaList) {
    // Below error (warnings, info, debug) is neither kept nor printed; checked
    // first because FFmpeg calls this for every level, and formatting costs.
    if level > ffi::AV_LOG_ERROR || fmt.is_null() {
        return;
    }
    let mut buf = [0 as c_char; 1024];
    // 0: no "[name @ 0x…]" prefix; the name is added below without the address.
    let mut print_prefix: c_int = 0;
    // SAFETY: FFmpeg hands us its own fmt/va_list pair, consumed once here; the
    // buffer size is passed and the result is always NUL-terminated.
    unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            vl,
            buf.as_mut_ptr(),
            buf.len() as c_int,
            &mut print_prefix,
        );
    }
    // SAFETY: NUL-terminated by av_log_format_line2 (the buffer starts zeroed too).
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    // SAFETY: a non-null log context starts with its AVClass pointer (av_log's contract).
    let name = unsafe { context_name(avcl) };
    if ECHO.load(Ordering::Relaxed) {
        match &name {
            Some(n) => eprint!("[{n}] {text}"),
            None => eprint!("{text}"),
        }
    }
    let _ = CAPTURED.try_with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            return;
        };
        if c.partial.is_empty() {
            if let Some(n) = &name {
                c.partial.push_str(n);
                c.partial.push_str(": ");
            }
        }
        if c.partial.len() < MAX_LINE {
            c.partial.push_str(&text);
        }
        if text.ends_with('\n') {
            let line: String = c
                .partial
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(MAX_LINE)
                .collect();
            c.partial.clear();
            c.last = Some(line);
        }
    });
}

/// The logging context's short name (`mov`, `libx264`, `h264`), if it has one.
unsafe fn context_name(avcl: *mut c_void) -> Option<String> {
    if avcl.is_null() {
        return None;
    }
    // SAFETY: per av_log's contract (see the caller).
    unsafe {
        let class = *(avcl as *const *const ffi::AVClass);
        if class.is_null() {
            return None;
        }
        let name = match (*class).item_name {
            Some(item_name) => item_name(avcl),
            None => (*class).class_name,
        };
        if name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}
