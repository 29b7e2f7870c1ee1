//! `hold_free_chunks` on the main heap: after it, the heap's bins are empty and new allocations
//! come from its top. Runs without the test harness (`harness = false`), on the process's main
//! thread, because only the main thread allocates from the heap the fork server forks with
//! (the harness's threads have arenas of their own).
#![expect(
    clippy::print_stdout,
    reason = "a test without the harness reports on stdout"
)]

use std::process::ExitCode;

/// The main heap's free bytes outside its top chunk, and where that top chunk starts.
fn free_in_bins() -> (usize, usize) {
    // SAFETY: mallinfo2 only reads the allocator's statistics; sbrk(0) moves nothing.
    let (info, top) = unsafe { (libc::mallinfo2(), libc::sbrk(0) as usize) };
    (
        info.fordblks.saturating_sub(info.keepcost),
        top.saturating_sub(info.keepcost),
    )
}

fn main() -> ExitCode {
    // Chunks of many sizes, every other one freed: free chunks all over the heap.
    let chunks: Vec<Vec<u8>> = (0..4000).map(|i| vec![1u8; 24 + (i * 37) % 1500]).collect();
    let kept: Vec<Vec<u8>> = chunks.into_iter().step_by(2).collect();
    let (scattered, _) = free_in_bins();
    let taken = worker::hold_free_chunks();
    let (left, top_start) = free_in_bins();
    let fresh: Vec<Vec<u8>> = (0..200).map(|i| vec![2u8; 16 + i * 8]).collect();
    let below_top = fresh
        .iter()
        .filter(|v| (v.as_ptr() as usize) < top_start)
        .count();
    drop(kept);
    println!(
        "free in bins before {scattered} B, after {left} B; {taken} chunks held; \
         {below_top} of {} new allocations below the top chunk",
        fresh.len()
    );
    let ok = scattered > 500_000 && taken >= 1000 && left < 4096 && below_top == 0;
    if ok {
        println!("test held_free_chunks ... ok");
        ExitCode::SUCCESS
    } else {
        println!("test held_free_chunks ... FAILED");
        ExitCode::FAILURE
    }
}
