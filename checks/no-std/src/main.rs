//! A `#![no_std]`, `#![no_main]` program for the host: the C runtime calls `main`, memory
//! comes from the C library's `malloc`, output goes through `write`. It classifies the three
//! digits of [`nanograd_no_std_check::DIGITS`] and exits with 0 if all three are right.
//! Any crate that links `std` brings a second `panic_impl` and fails the build.

#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};

use nanograd_no_std_check::{classify_digits, DIGITS};

#[link(name = "c")]
extern "C" {
    fn aligned_alloc(align: usize, size: usize) -> *mut u8;
    fn free(ptr: *mut u8);
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn abort() -> !;
}

/// The C library's allocator.
struct Malloc;

unsafe impl GlobalAlloc for Malloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // aligned_alloc wants a size that is a multiple of the alignment
        let align = layout.align().max(core::mem::size_of::<usize>());
        let size = layout.size().div_ceil(align) * align;
        unsafe { aligned_alloc(align, size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { free(ptr) }
    }
}

// The host's precompiled `alloc` is built to unwind: it names the unwinder's
// `_Unwind_Resume` (from libgcc_s) and the personality routine `std` would provide. With
// `panic = "abort"` nothing unwinds, so the routine is never called.
#[link(name = "gcc_s")]
extern "C" {}

#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[global_allocator]
static ALLOC: Malloc = Malloc;

fn print(s: &[u8]) {
    unsafe { write(1, s.as_ptr(), s.len()) };
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    print(b"panic\n");
    unsafe { abort() }
}

#[no_mangle]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let Ok(predicted) = classify_digits() else {
        print(b"no_std check: classify_digits failed\n");
        return 2;
    };
    let mut line = *b"no_std check: predicted ? ? ?, labels ? ? ?\n";
    for (i, (p, (_, label))) in predicted.iter().zip(DIGITS).enumerate() {
        line[24 + 2 * i] = b'0' + *p as u8;
        line[38 + 2 * i] = b'0' + label as u8;
    }
    print(&line);
    let right = predicted.iter().zip(DIGITS).all(|(p, (_, l))| *p == l);
    if right {
        0
    } else {
        1
    }
}
