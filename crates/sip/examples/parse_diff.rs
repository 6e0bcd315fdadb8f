//! Differential check for parser changes: parses N deterministic mutations
//! of the RFC 4475 torture messages and prints one line per input (the error,
//! or the canonical form with CSeq, top Via and From). Run it before and after
//! a change and compare the outputs byte for byte:
//!
//! ```sh
//! git stash; cargo run --release -p sip --example parse_diff -- 1000000 > /tmp/before.txt; git stash pop
//! cargo run --release -p sip --example parse_diff -- 1000000 > /tmp/after.txt
//! cmp /tmp/before.txt /tmp/after.txt
//! ```
use std::io::Write;
fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc4475");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .collect();
    files.sort();
    let mut corpus: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    corpus.push(include_bytes!("../testdata/invite.sip").to_vec());
    corpus.push(include_bytes!("../testdata/ok.sip").to_vec());
    let interesting = b"\r\n :;,\"<>@%\\09\x00\xff/=?[]-.\t*+~'!(){}&$_`aZ";
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200000);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    for i in 0..n {
        let mut msg = corpus[i % corpus.len()].clone();
        let k = if i < corpus.len() { 0 } else { 1 + rnd() % 4 };
        for _ in 0..k {
            if msg.is_empty() {
                break;
            }
            let len = msg.len();
            let pos = (rnd() as usize) % len;
            let b = if rnd() % 3 == 0 {
                rnd() as u8
            } else {
                interesting[(rnd() as usize) % interesting.len()]
            };
            match rnd() % 5 {
                0 | 1 => msg[pos] = b,
                2 => msg.insert(pos, b),
                3 => {
                    msg.remove(pos);
                }
                _ => {
                    let l = 1 + (rnd() as usize) % 16;
                    let p = msg[pos..(pos + l).min(len)].to_vec();
                    msg.splice(pos..pos, p);
                }
            }
        }
        match sip::Message::parse(msg) {
            Ok(m) => {
                let b = m.to_bytes();
                let _ = writeln!(
                    out,
                    "{i} OK {:?} {:?} {:?} {:?}",
                    String::from_utf8_lossy(&b),
                    m.cseq(),
                    m.top_via(),
                    m.from()
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{i} ERR {e:?}");
            }
        }
    }
}
