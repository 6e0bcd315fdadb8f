//! Parses the bench INVITE N times (for instruction counts under callgrind).
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let invite = bytes::Bytes::from_static(include_bytes!("../testdata/invite.sip"));
    let mut total = 0;
    for _ in 0..n {
        total += sip::Message::parse(std::hint::black_box(invite.clone()))
            .unwrap()
            .content_length();
    }
    println!("{total}");
}
