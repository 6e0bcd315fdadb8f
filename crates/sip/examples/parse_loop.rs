//! Parses the bench INVITE (or, with `ok`, the 200 OK) N times, for
//! instruction counts under callgrind:
//!
//! ```sh
//! cargo build --release -p sip --example parse_loop
//! valgrind --tool=callgrind target/release/examples/parse_loop 10000 [ok]
//! ```
//!
//! less a run with N = 0 (the startup), divided by N.
fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let message = match args.next().as_deref() {
        Some("ok") => bytes::Bytes::from_static(include_bytes!("../testdata/ok.sip")),
        _ => bytes::Bytes::from_static(include_bytes!("../testdata/invite.sip")),
    };
    let mut total = 0;
    for _ in 0..n {
        total += sip::Message::parse(std::hint::black_box(message.clone()))
            .unwrap()
            .content_length();
    }
    println!("{total}");
}
