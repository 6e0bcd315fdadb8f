//! Any bytes: a message or an error, never a panic; accepted messages
//! re-parse from their canonical form to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = sip::Message::parse(data.to_vec()) {
        let canonical = msg.to_bytes();
        let again = sip::Message::parse(canonical.clone()).expect("canonical form re-parses");
        assert_eq!(again.to_bytes(), canonical);
        let _ = (msg.vias(), msg.from(), msg.to(), msg.contact(), msg.routes(), msg.request_uri());
    }
});
