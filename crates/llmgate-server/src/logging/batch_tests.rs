use std::time::Instant;

use super::*;

const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// A batch writing into its own list of writes; `batching` makes it buffer as if its thread
/// were running (the current thread stands in for it, so nothing is written but by the test).
macro_rules! capture {
    ($batch:ident, $out:ident) => {
        static $out: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
        static $batch: Batch = Batch::new(|bytes| lock(&$out).push(bytes.to_vec()));
    };
}

fn writes(out: &Mutex<Vec<Vec<u8>>>) -> Vec<String> {
    lock(out)
        .iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

fn batching(batch: &Batch) {
    let _ = batch.writer.set(std::thread::current());
}

#[test]
fn request_lines_wait_and_go_in_one_write_in_their_order() {
    capture!(B, OUT);
    batching(&B);
    B.push(b"one\n");
    B.push(b"two\n");
    assert!(writes(&OUT).is_empty());
    B.flush();
    assert_eq!(writes(&OUT), ["one\ntwo\n"]);
    // Nothing buffered: no empty write.
    B.flush();
    assert_eq!(writes(&OUT).len(), 1);
}

#[test]
fn a_line_written_at_once_follows_the_lines_buffered_before_it() {
    capture!(B, OUT);
    batching(&B);
    B.push(b"request 1\n");
    B.push(b"request 2\n");
    B.write_now(b"WARN something\n");
    assert_eq!(writes(&OUT), ["request 1\nrequest 2\nWARN something\n"]);
    B.push(b"request 3\n");
    B.flush();
    assert_eq!(writes(&OUT)[1], "request 3\n");
}

#[test]
fn without_its_thread_each_line_is_written_at_once() {
    capture!(B, OUT);
    B.push(b"one\n");
    B.push(b"two\n");
    assert_eq!(writes(&OUT), ["one\n", "two\n"]);
}

#[test]
fn a_full_buffer_is_written_by_the_thread_that_fills_it() {
    capture!(B, OUT);
    batching(&B);
    let line = [b'x'; 1023]
        .iter()
        .chain(b"\n")
        .copied()
        .collect::<Vec<_>>();
    for _ in 0..FULL / line.len() - 1 {
        B.push(&line);
    }
    assert!(writes(&OUT).is_empty());
    B.push(&line);
    let out = writes(&OUT);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), FULL);
    // The buffer it was written from is not kept at that size.
    assert!(lock(&B.writing).capacity() <= KEEP);
}

#[test]
fn the_thread_writes_a_lone_line_within_its_interval() {
    capture!(B, OUT);
    B.start(FLUSH_EVERY).unwrap();
    let pushed = Instant::now();
    B.push(b"alone\n");
    while writes(&OUT).is_empty() {
        assert!(
            pushed.elapsed() < FLUSH_EVERY * 40,
            "not written after {:?}",
            pushed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(writes(&OUT), ["alone\n"]);
}

#[test]
fn the_panic_flush_skips_a_held_lock_and_writes_otherwise() {
    capture!(B, OUT);
    batching(&B);
    B.push(b"before the panic\n");
    {
        let _held = lock(&B.pending);
        B.try_flush();
    }
    assert!(writes(&OUT).is_empty());
    B.try_flush();
    assert_eq!(writes(&OUT), ["before the panic\n"]);
}
