//! Whatever bytes arrive, the parser answers with a message or an error —
//! never a panic — and whatever it accepts re-parses from its canonical form
//! to the same message.

use std::path::PathBuf;

use proptest::prelude::*;
use sip::Message;

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(load_corpus)
}

fn load_corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .collect();
    files.sort();
    let mut out: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    out.push(include_bytes!("../testdata/invite.sip").to_vec());
    out.push(include_bytes!("../testdata/ok.sip").to_vec());
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(b' '),
        Just(b':'),
        Just(b';'),
        Just(b','),
        Just(b'"'),
        Just(b'<'),
        Just(b'>'),
        Just(b'@'),
        Just(b'%'),
        Just(b'\\'),
        Just(b'0'),
        Just(b'9'),
        Just(0u8),
        Just(0xff),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(mut msg: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if msg.is_empty() {
            break;
        }
        let n = msg.len();
        match *m {
            Mutation::Flip(i, b) => msg[i % n] = b,
            Mutation::Insert(i, b) => msg.insert(i % (n + 1), b),
            Mutation::Delete(i) => {
                msg.remove(i % n);
            }
            Mutation::Truncate(i) => msg.truncate(i % n),
            Mutation::Duplicate(i, len) => {
                let start = i % n;
                let part = msg[start..(start + len).min(n)].to_vec();
                msg.splice(start..start, part);
            }
        }
    }
    msg
}

fn check(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    if let Ok(msg) = Message::parse(bytes) {
        let canonical = msg.to_bytes();
        let again = Message::parse(canonical.clone());
        prop_assert!(
            again.is_ok(),
            "canonical form rejected: {:?}\n{}",
            again.err(),
            msg
        );
        prop_assert_eq!(again.unwrap().to_bytes(), canonical);
        // Typed accessors never panic either.
        let _ = (
            msg.vias(),
            msg.from(),
            msg.to(),
            msg.contact(),
            msg.cseq(),
            msg.routes(),
        );
        let _ = (
            msg.request_uri(),
            msg.reasons(),
            msg.feature_caps(),
            msg.content_type(),
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_torture_messages_never_panic_and_round_trip(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let corpus = corpus();
        let base = corpus[pick.index(corpus.len())].clone();
        check(apply(base, &mutations))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(bytes)?;
    }
}

/// Found by `cargo fuzz`: a start line beginning "SI " and a multi-byte
/// character used to be sliced inside that character.
#[test]
fn start_line_with_multibyte_text_near_the_version() {
    let mut msg = "SI сто де?вяносто\r\nVia: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1\r\nCSeq: 35 INVITE\r\n\r\n".as_bytes().to_vec();
    assert!(Message::parse(msg.clone()).is_err());
    msg.splice(0..2, *b"SIP");
    assert!(Message::parse(msg).is_err());
}
