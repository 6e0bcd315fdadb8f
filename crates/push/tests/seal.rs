//! Sealed VoIP payloads through the public face: what the sender writes,
//! what the push path can see of it, and every way a device refuses one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use push::{
    is_sealed, open, seal, DeviceKey, KeyParseError, OpenError, PayloadError, SealError,
    SealingKey, VoipPayload, SEAL_PAD_TO, VOIP_PAYLOAD_LIMIT,
};
use serde_json::Value;

fn alice() -> VoipPayload {
    VoipPayload {
        call_id: "a84b4c76e66710@pc33.atlanta.example.com".into(),
        caller: "sip:alice@atlanta.example.com".into(),
        display_name: Some("Alice Liddell".into()),
        has_video: true,
        send_time: 1_700_000_000_123,
    }
}

fn phone() -> DeviceKey {
    DeviceKey::generate().unwrap()
}

/// The envelope with `edit` applied to its parsed JSON.
fn edited(json: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(json).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// The envelope with byte `i` of the base64url field `name` (decoded)
/// flipped, re-encoded so the result is still well-formed.
fn flip(json: &[u8], name: &str, i: usize) -> Vec<u8> {
    edited(json, |v| {
        let field = &mut v["sealed"][name];
        let mut bytes = URL_SAFE_NO_PAD.decode(field.as_str().unwrap()).unwrap();
        bytes[i] ^= 0x01;
        *field = Value::String(URL_SAFE_NO_PAD.encode(bytes));
    })
}

#[test]
fn sealed_payload_round_trips_to_the_device() {
    let key = phone();
    let sealed = seal(&alice(), &key.public()).unwrap();
    assert!(is_sealed(sealed.as_bytes()));
    assert_eq!(open(sealed.as_bytes(), &key).unwrap(), alice());
    assert_eq!(
        VoipPayload::from_json_or_open(sealed.as_bytes(), Some(&key)).unwrap(),
        alice()
    );
    // A device key survives storage.
    let restored = DeviceKey::from_bytes(key.to_bytes());
    assert_eq!(restored.key_id(), key.key_id());
    assert_eq!(open(sealed.as_bytes(), &restored).unwrap(), alice());
}

#[test]
fn envelope_has_version_and_key_id_in_the_clear_and_nothing_else() {
    let key = phone();
    let sealed = alice().seal(&key.public()).unwrap();
    let v: Value = serde_json::from_slice(sealed.as_bytes()).unwrap();
    assert_eq!(v["v"], 1);
    let inner = v["sealed"].as_object().unwrap();
    let mut keys: Vec<_> = inner.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["ct", "epk", "kid", "nonce"]);
    assert_eq!(inner["kid"], key.key_id());
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
}

#[test]
fn sealed_bytes_contain_no_caller_display_name_or_call_id() {
    let key = phone();
    let p = alice();
    let sealed = seal(&p, &key.public()).unwrap();
    let text = sealed.as_str();
    for secret in [
        p.caller.as_str(),
        "alice",
        "atlanta",
        p.display_name.as_deref().unwrap(),
        "Liddell",
        p.call_id.as_str(),
        "a84b4c76e66710",
        "1700000000123",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaks in {text}");
    }
}

#[test]
fn every_seal_uses_a_fresh_ephemeral_key_and_nonce() {
    let key = phone().public();
    let a: Value = serde_json::from_slice(seal(&alice(), &key).unwrap().as_bytes()).unwrap();
    let b: Value = serde_json::from_slice(seal(&alice(), &key).unwrap().as_bytes()).unwrap();
    assert_ne!(a["sealed"]["epk"], b["sealed"]["epk"]);
    assert_ne!(a["sealed"]["nonce"], b["sealed"]["nonce"]);
    assert_ne!(a["sealed"]["ct"], b["sealed"]["ct"]);
}

#[test]
fn a_flipped_byte_in_ct_nonce_or_epk_is_tampered() {
    let key = phone();
    let sealed = seal(&alice(), &key.public()).unwrap();
    let ct_len = {
        let v: Value = serde_json::from_slice(sealed.as_bytes()).unwrap();
        URL_SAFE_NO_PAD
            .decode(v["sealed"]["ct"].as_str().unwrap())
            .unwrap()
            .len()
    };
    let cases = [
        ("ct", 0),
        ("ct", ct_len / 2),
        ("ct", ct_len - 1), // in the tag
        ("nonce", 0),
        ("nonce", 11),
        ("epk", 0),
        ("epk", 17),
    ];
    for (field, i) in cases {
        let bad = flip(sealed.as_bytes(), field, i);
        assert_eq!(open(&bad, &key), Err(OpenError::Tampered), "{field}[{i}]");
    }
}

#[test]
fn a_flipped_key_id_or_another_devices_key_is_wrong_key_id() {
    let key = phone();
    let sealed = seal(&alice(), &key.public()).unwrap();
    let bad = edited(sealed.as_bytes(), |v| {
        let kid = v["sealed"]["kid"].as_str().unwrap();
        let first = if kid.starts_with('0') { "1" } else { "0" };
        v["sealed"]["kid"] = Value::String(format!("{first}{}", &kid[1..]));
    });
    assert!(matches!(
        open(&bad, &key),
        Err(OpenError::WrongKeyId { .. })
    ));

    let other = phone();
    let err = open(sealed.as_bytes(), &other).unwrap_err();
    assert_eq!(
        err,
        OpenError::WrongKeyId {
            found: key.key_id().to_owned(),
            expected: other.key_id().to_owned()
        }
    );
    assert!(err.to_string().contains("re-register"), "{err}");
}

#[test]
fn a_changed_version_is_unsupported() {
    let key = phone();
    let sealed = seal(&alice(), &key.public()).unwrap();
    let bad = edited(sealed.as_bytes(), |v| v["v"] = 2.into());
    assert_eq!(
        open(&bad, &key),
        Err(OpenError::UnsupportedVersion { found: 2 })
    );
}

#[test]
fn malformed_envelopes_are_malformed() {
    let key = phone();
    let sealed = seal(&alice(), &key.public()).unwrap();
    let kid = key.key_id().to_owned();
    let bad: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        br#"{"sealed":{}}"#.to_vec(),
        br#"{"v":"1","sealed":{}}"#.to_vec(),
        br#"{"v":1,"sealed":"opaque"}"#.to_vec(),
        edited(sealed.as_bytes(), |v| {
            v["sealed"].as_object_mut().unwrap().remove("ct");
        }),
        edited(sealed.as_bytes(), |v| {
            v["sealed"]["ct"] = "not base64!".into()
        }),
        edited(sealed.as_bytes(), |v| v["sealed"]["ct"] = "AAAA".into()),
        edited(sealed.as_bytes(), |v| v["sealed"]["nonce"] = "AAAA".into()),
        edited(sealed.as_bytes(), |v| v["sealed"]["epk"] = "AAAA".into()),
    ];
    for json in bad {
        let err = open(&json, &key).unwrap_err();
        assert!(
            matches!(err, OpenError::Malformed { .. }),
            "{}: {err:?}",
            String::from_utf8_lossy(&json)
        );
    }
    // Right key id, all-zero (low-order) ephemeral key: refused, not opened.
    let zero_epk = edited(sealed.as_bytes(), |v| {
        v["sealed"]["epk"] = URL_SAFE_NO_PAD.encode([0u8; 32]).into();
        v["sealed"]["kid"] = kid.clone().into();
    });
    assert_eq!(open(&zero_epk, &key), Err(OpenError::Tampered));
}

#[test]
fn plaintext_is_not_sealed_but_the_device_helper_accepts_it() {
    let key = phone();
    let json = alice().to_json().unwrap();
    assert!(!is_sealed(json.as_bytes()));
    assert_eq!(open(json.as_bytes(), &key), Err(OpenError::NotSealed));
    assert_eq!(
        VoipPayload::from_json_or_open(json.as_bytes(), Some(&key)).unwrap(),
        alice()
    );
    assert_eq!(
        VoipPayload::from_json_or_open(json.as_bytes(), None).unwrap(),
        alice()
    );
    // A sealed payload reaching a device without a key says so.
    let sealed = seal(&alice(), &key.public()).unwrap();
    assert_eq!(
        VoipPayload::from_json_or_open(sealed.as_bytes(), None),
        Err(OpenError::NoDeviceKey)
    );
    // Plaintext errors still come through typed.
    assert_eq!(
        VoipPayload::from_json_or_open(br#"{"call_id":"c"}"#, Some(&key)),
        Err(OpenError::Payload(PayloadError::MissingVersion))
    );
}

fn with_display_name_len(n: usize) -> VoipPayload {
    VoipPayload {
        display_name: Some("x".repeat(n)),
        ..alice()
    }
}

#[test]
fn padding_hides_the_display_name_length() {
    let key = phone().public();
    let short = seal(&with_display_name_len(2), &key).unwrap();
    let long = seal(&with_display_name_len(60), &key).unwrap();
    assert_eq!(short.len(), long.len());
    let plain_len = with_display_name_len(2).to_json().unwrap().len();
    assert!(plain_len < SEAL_PAD_TO, "the test needs one padding bucket");
}

#[test]
fn the_sealed_envelope_respects_the_5120_byte_voip_limit() {
    let key = phone().public();
    // Grow the display name until sealing refuses; the last one accepted
    // fits the limit, the first one refused names its size.
    let mut n = 3500;
    let last_ok = loop {
        match seal(&with_display_name_len(n), &key) {
            Ok(sealed) => {
                assert!(sealed.len() <= VOIP_PAYLOAD_LIMIT, "{}", sealed.len());
                n += 1;
            }
            Err(SealError::SealedTooLarge { size, limit }) => {
                assert_eq!(limit, VOIP_PAYLOAD_LIMIT);
                assert!(size > VOIP_PAYLOAD_LIMIT && size <= VOIP_PAYLOAD_LIMIT + 4);
                break n - 1;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(last_ok > 3500, "3500 bytes of name must fit sealed");
    // The same payload still fits as plaintext: sealing costs bytes.
    assert!(with_display_name_len(last_ok + 1).to_json().is_ok());
    // The largest accepted one still opens.
    let device = phone();
    let big = with_display_name_len(last_ok);
    let sealed = seal(&big, &device.public()).unwrap();
    assert_eq!(open(sealed.as_bytes(), &device).unwrap(), big);
    // An over-limit plaintext is the plaintext error.
    assert!(matches!(
        seal(&with_display_name_len(6000), &key),
        Err(SealError::Payload(PayloadError::PayloadTooLarge { .. }))
    ));
    let err = seal(&with_display_name_len(last_ok + 1), &key).unwrap_err();
    assert!(err.to_string().contains("SealedTooLarge"), "{err}");
}

#[test]
fn sealing_key_rides_in_a_register_parameter_as_base64url() {
    let key = phone();
    let text = key.public().to_base64url();
    assert_eq!(text.len(), 43);
    assert!(text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let parsed: SealingKey = text.parse().unwrap();
    assert_eq!(parsed, key.public());
    assert_eq!(parsed.key_id(), key.key_id());
    assert_eq!(parsed.to_string(), text);
    assert_eq!(
        SealingKey::from_base64url("AAAA"),
        Err(KeyParseError::WrongLength { found: 3 })
    );
    assert_eq!(
        SealingKey::from_base64url("not base64!"),
        Err(KeyParseError::NotBase64Url)
    );
}

#[test]
fn device_public_key_matches_rfc_7748_section_6_1() {
    let hex = |s: &str| -> [u8; 32] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    };
    let alice = DeviceKey::from_bytes(hex(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    assert_eq!(
        alice.public().to_bytes(),
        hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
}

#[test]
fn a_low_order_sealing_key_is_refused() {
    let zero = SealingKey::from_bytes([0; 32]);
    assert!(matches!(
        seal(&alice(), &zero),
        Err(SealError::LowOrderKey { .. })
    ));
}
