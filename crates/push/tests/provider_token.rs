//! Provider tokens: signing, verification and the cache's refresh rules,
//! with keys generated per test and simulated time.

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use push::{
    verify_provider_token, ApnsError, JwtError, ProviderKey, ProviderTokenCache, PublicKey,
    RefreshRefused, MAX_TOKEN_AGE, MIN_REFRESH_INTERVAL,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const TEAM: &str = "TEAM123456";
const KID: &str = "KEY1234567";
const T0: u64 = 1_700_000_000;

fn pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

/// A `.p8` file as Apple hands it out: PEM around PKCS#8, 64-column lines.
fn p8_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

fn key() -> ProviderKey {
    ProviderKey::from_p8_pem(&p8_pem(&pkcs8()), KID, TEAM).unwrap()
}

fn keys_of(key: &ProviderKey) -> HashMap<String, PublicKey> {
    HashMap::from([(key.key_id().to_owned(), key.public_key())])
}

fn segment_json(jwt: &str, i: usize) -> serde_json::Value {
    let seg = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

#[test]
fn a_signed_token_has_apples_shape_and_verifies() {
    let key = key();
    let jwt = key.sign(T0).unwrap();
    assert!(!jwt.contains('='), "base64url without padding: {jwt}");
    assert_eq!(
        segment_json(&jwt, 0),
        serde_json::json!({"alg": "ES256", "kid": KID})
    );
    assert_eq!(
        segment_json(&jwt, 1),
        serde_json::json!({"iss": TEAM, "iat": T0})
    );
    let sig = URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(2).unwrap())
        .unwrap();
    assert_eq!(sig.len(), 64, "ES256 signatures are r || s");

    let claims = verify_provider_token(&jwt, &keys_of(&key), TEAM, T0 + 10).unwrap();
    assert_eq!((claims.iss.as_str(), claims.iat), (TEAM, T0));
}

#[test]
fn a_tampered_token_is_rejected() {
    let key = key();
    let keys = keys_of(&key);
    let jwt = key.sign(T0).unwrap();
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();

    // Claims rewritten to another team, signature kept.
    parts[1] = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"EVIL000000","iat":{T0}}}"#));
    let forged = parts.join(".");
    assert_eq!(
        verify_provider_token(&forged, &keys, "EVIL000000", T0),
        Err(JwtError::BadSignature { kid: KID.into() })
    );

    // One signature byte flipped.
    let mut sig = URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(2).unwrap())
        .unwrap();
    sig[10] ^= 1;
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    let err = verify_provider_token(&parts.join("."), &keys, TEAM, T0).unwrap_err();
    assert_eq!(err, JwtError::BadSignature { kid: KID.into() });
    assert_eq!(err.apns_error(), ApnsError::InvalidProviderToken);

    // Signed by another key that claims the same kid.
    let other = ProviderKey::from_pkcs8_der(&pkcs8(), KID, TEAM).unwrap();
    assert!(matches!(
        verify_provider_token(&other.sign(T0).unwrap(), &keys, TEAM, T0),
        Err(JwtError::BadSignature { .. })
    ));
}

#[test]
fn wrong_team_unknown_kid_and_other_algorithms_are_rejected() {
    let key = key();
    let jwt = key.sign(T0).unwrap();
    assert_eq!(
        verify_provider_token(&jwt, &keys_of(&key), "OTHERTEAM0", T0),
        Err(JwtError::WrongTeam {
            expected: "OTHERTEAM0".into(),
            found: TEAM.into()
        })
    );
    let stranger = HashMap::from([("SOMEKEY000".to_owned(), key.public_key())]);
    assert_eq!(
        verify_provider_token(&jwt, &stranger, TEAM, T0),
        Err(JwtError::UnknownKeyId { kid: KID.into() })
    );

    let rest = jwt.split_once('.').unwrap().1;
    for (header, want) in [
        (
            r#"{"alg":"HS256","kid":"KEY1234567"}"#,
            JwtError::UnsupportedAlgorithm {
                alg: "HS256".into(),
            },
        ),
        (r#"{"alg":"ES256"}"#, JwtError::MissingKeyId),
    ] {
        let token = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header));
        assert_eq!(
            verify_provider_token(&token, &keys_of(&key), TEAM, T0),
            Err(want)
        );
    }
    for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert!(matches!(
            verify_provider_token(junk, &keys_of(&key), TEAM, T0),
            Err(JwtError::Malformed { .. })
        ));
    }
}

#[test]
fn iat_older_than_an_hour_is_expired_and_far_future_is_invalid() {
    let key = key();
    let keys = keys_of(&key);
    let jwt = key.sign(T0).unwrap();
    assert!(verify_provider_token(&jwt, &keys, TEAM, T0 + MAX_TOKEN_AGE).is_ok());
    let err = verify_provider_token(&jwt, &keys, TEAM, T0 + MAX_TOKEN_AGE + 1).unwrap_err();
    assert_eq!(
        err,
        JwtError::Expired {
            iat: T0,
            now: T0 + MAX_TOKEN_AGE + 1
        }
    );
    assert_eq!(err.apns_error(), ApnsError::ExpiredProviderToken);

    assert!(verify_provider_token(&jwt, &keys, TEAM, T0 - 30).is_ok());
    let err = verify_provider_token(&jwt, &keys, TEAM, T0 - 600).unwrap_err();
    assert_eq!(
        err,
        JwtError::IssuedInFuture {
            iat: T0,
            now: T0 - 600
        }
    );
    assert_eq!(err.apns_error(), ApnsError::InvalidProviderToken);
}

#[test]
fn keys_load_from_pem_and_bad_keys_say_why() {
    assert!(matches!(
        ProviderKey::from_p8_pem("no pem here", KID, TEAM),
        Err(JwtError::BadPem { .. })
    ));
    let not_pkcs8 = p8_pem(b"definitely not a key");
    assert!(matches!(
        ProviderKey::from_p8_pem(&not_pkcs8, KID, TEAM),
        Err(JwtError::KeyRejected { .. })
    ));

    // The public half as `openssl ec -pubout` prints it (SPKI PEM).
    let key = key();
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(key.public_key().as_bytes());
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&spki)
    );
    assert_eq!(PublicKey::from_spki_pem(&pem).unwrap(), key.public_key());
    assert!(PublicKey::from_sec1(&[4; 33]).is_err());
}

#[test]
fn the_cache_reuses_its_token_and_resigns_between_20_and_60_minutes() {
    let mut cache = ProviderTokenCache::new(key());
    let first = cache.token(T0).unwrap().to_owned();
    assert_eq!(cache.token(T0 + 60).unwrap(), first);
    assert_eq!(cache.token(T0 + 49 * 60).unwrap(), first);
    let second = cache.token(T0 + 50 * 60).unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(cache.signatures(), 2);
    assert_eq!(cache.issued_at(), Some(T0 + 50 * 60));

    for secs in [0, 19 * 60, 60 * 60, 3 * 60 * 60] {
        assert_eq!(
            ProviderTokenCache::with_refresh_after(key(), secs).unwrap_err(),
            JwtError::BadRefreshInterval { secs }
        );
    }
    assert!(ProviderTokenCache::with_refresh_after(key(), 20 * 60).is_ok());
}

#[test]
fn expired_provider_token_forces_one_resign_but_never_under_20_minutes() {
    let mut cache = ProviderTokenCache::new(key());
    assert_eq!(cache.invalidate(T0), Ok(()), "nothing cached yet");
    let first = cache.token(T0).unwrap().to_owned();

    // APNs calls a 5-minute-old token expired: a clock problem; refuse.
    let refused = cache.invalidate(T0 + 300).unwrap_err();
    assert_eq!(
        refused,
        RefreshRefused::TooSoon {
            age: 300,
            retry_in: MIN_REFRESH_INTERVAL - 300
        }
    );
    assert!(refused.to_string().contains("TooManyProviderTokenUpdates"));
    assert_eq!(cache.token(T0 + 301).unwrap(), first);

    // At 25 minutes the forced re-sign is allowed, once.
    assert_eq!(cache.invalidate(T0 + 25 * 60), Ok(()));
    let second = cache.token(T0 + 25 * 60).unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(cache.token(T0 + 26 * 60).unwrap(), second);
    assert_eq!(cache.signatures(), 2);
}

/// 10 000 pushes over three simulated hours, with an `ExpiredProviderToken`
/// invalidation every 97th push: the key signs at most once per 20 minutes,
/// and every token handed out is younger than an hour and verifies.
#[test]
fn under_10_000_pushes_the_key_signs_at_most_once_per_20_minutes() {
    let key = key();
    let keys = keys_of(&key);
    let mut cache = ProviderTokenCache::new(key);
    let span = 3 * 60 * 60;
    let mut sign_times = Vec::new();
    let mut last_signatures = 0;
    for i in 0..10_000u64 {
        let now = T0 + i * span / 10_000;
        if i % 97 == 96 {
            let _ = cache.invalidate(now);
        }
        let jwt = cache.token(now).unwrap().to_owned();
        if cache.signatures() != last_signatures {
            last_signatures = cache.signatures();
            sign_times.push(now);
            verify_provider_token(&jwt, &keys, TEAM, now).unwrap();
        }
        let age = now - cache.issued_at().unwrap();
        assert!(age < MAX_TOKEN_AGE, "push {i}: token {age} s old");
    }
    assert_eq!(sign_times.len() as u64, cache.signatures());
    for pair in sign_times.windows(2) {
        assert!(
            pair[1] - pair[0] >= MIN_REFRESH_INTERVAL,
            "signed at {} and again at {}",
            pair[0],
            pair[1]
        );
    }
    assert!(
        cache.signatures() <= span / MIN_REFRESH_INTERVAL + 1,
        "{} signatures in 3 h",
        cache.signatures()
    );
}
