//! RFC 4475 torture messages: every valid message parses and re-parses from
//! its own canonical output; every invalid one is rejected with the specific
//! error the RFC's reasoning calls for.

use std::path::PathBuf;

use sip::{HeaderName, Message, ParseError};

fn load(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rfc4475")
        .join(format!("{name}.sip"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(name: &str) -> Result<Message, ParseError> {
    Message::parse(load(name))
}

fn valid(name: &str) -> Message {
    let msg = parse(name).unwrap_or_else(|e| panic!("{name} must parse: {e}"));
    let again = Message::parse(msg.to_bytes())
        .unwrap_or_else(|e| panic!("{name}'s canonical form must re-parse: {e}\n{msg}"));
    assert_eq!(
        msg, again,
        "{name}: canonical output re-parses to the same message"
    );
    assert_eq!(
        again.to_bytes(),
        msg.to_bytes(),
        "{name}: canonical form is a fixed point"
    );
    msg
}

#[test]
fn every_3_1_1_valid_message_parses_and_round_trips() {
    for name in [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "dblreq",
        "semiuri",
        "transports",
        "mpart01",
        "unreason",
        "noreason",
    ] {
        valid(name);
    }
}

#[test]
fn valid_messages_read_as_the_rfc_says() {
    let wsinv = valid("wsinv");
    assert_eq!(wsinv.max_forwards(), Some(68));
    assert_eq!(wsinv.cseq().unwrap().seq, 9);
    assert_eq!(wsinv.vias().len(), 3);
    assert_eq!(wsinv.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(wsinv.from().unwrap().display().unwrap(), "J Rosenberg \\\"");
    assert_eq!(wsinv.body().len(), 150);

    let intmeth = valid("intmeth");
    assert_eq!(
        intmeth.method().unwrap().as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );

    let esc02 = valid("esc02");
    assert_eq!(
        esc02.method().unwrap().as_str(),
        "RE%47IST%45R",
        "an escaped method is not REGISTER"
    );

    let dblreq = valid("dblreq");
    assert_eq!(dblreq.method(), Some(&sip::Method::Register));
    assert!(
        dblreq.body().is_empty(),
        "the INVITE after Content-Length 0 is discarded"
    );

    let semiuri = valid("semiuri");
    let uri = semiuri.request_uri().unwrap();
    assert_eq!(uri.as_sip().unwrap().user, Some("user;par=u%40example.net"));

    let transports = valid("transports");
    let kinds: Vec<&str> = transports.vias().iter().map(|v| v.transport).collect();
    assert_eq!(kinds, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    let mpart = valid("mpart01");
    assert_eq!(mpart.body().len(), 553);
    assert!(mpart.content_type().unwrap().is("multipart", "mixed"));

    assert!(
        valid("unreason")
            .reason_phrase()
            .unwrap()
            .contains("простое"),
        "UTF-8 reason phrase"
    );
    assert_eq!(valid("noreason").reason_phrase(), Some(""));
    assert_eq!(valid("longreq").vias().len(), 34);
    assert_eq!(
        valid("lwsdisp").from().unwrap().display_name,
        Some("caller")
    );
}

/// A check that an error is the one a message's flaw calls for.
type Expect = fn(&ParseError) -> bool;

/// Each invalid message, with what a matching error must say.
#[test]
fn every_3_1_2_invalid_message_is_rejected_with_a_specific_error() {
    use ParseError::*;
    let cases: &[(&str, Expect)] = &[
        (
            "badinv01",
            |e| matches!(e, BadHeader { name, .. } if name == "Via" || name == "Contact"),
        ),
        ("clerr", |e| {
            matches!(e, BodyTooShort { declared: 9999, .. })
        }),
        (
            "ncl",
            |e| matches!(e, BadHeader { name, .. } if name == "Content-Length"),
        ),
        (
            "scalar02",
            |e| matches!(e, BadHeader { name, .. } if name == "CSeq" || name == "Max-Forwards"),
        ),
        (
            "scalarlg",
            |e| matches!(e, BadHeader { name, .. } if ["CSeq", "Retry-After", "Warning"].contains(&name.as_str())),
        ),
        (
            "quotbal",
            |e| matches!(e, BadHeader { name, .. } if name == "To"),
        ),
        ("ltgtruri", |e| matches!(e, BadRequestUri(_))),
        ("lwsruri", |e| matches!(e, BadStartLine(_))),
        ("lwsstart", |e| matches!(e, BadStartLine(_))),
        ("trws", |e| matches!(e, BadStartLine(_))),
        ("escruri", |e| matches!(e, BadRequestUri(_))),
        (
            "baddate",
            |e| matches!(e, BadHeader { name, .. } if name == "Date"),
        ),
        (
            "regbadct",
            |e| matches!(e, BadHeader { name, .. } if name == "Contact"),
        ),
        (
            "badaspec",
            |e| matches!(e, BadHeader { name, .. } if name == "To"),
        ),
        (
            "baddn",
            |e| matches!(e, BadHeader { name, .. } if name == "From" || name == "To"),
        ),
        (
            "badvers",
            |e| matches!(e, UnsupportedVersion(v) if v == "SIP/7.0"),
        ),
        ("mismatch01", |e| matches!(e, CSeqMethodMismatch { .. })),
        ("mismatch02", |e| matches!(e, CSeqMethodMismatch { .. })),
        ("bigcode", |e| matches!(e, BadStatusCode(_))),
    ];
    for (name, expected) in cases {
        match parse(name) {
            Ok(m) => panic!("{name} must be rejected, but parsed as:\n{m}"),
            Err(e) => assert!(expected(&e), "{name}: unexpected error {e:?}"),
        }
    }
}

#[test]
fn errors_become_precise_responses() {
    let e = parse("badvers").unwrap_err();
    assert_eq!(e.status_code(), 505);
    let e = parse("scalar02").unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(
        e.reason_phrase().starts_with("Bad CSeq Header"),
        "{}",
        e.reason_phrase()
    );
}

#[test]
fn transaction_and_application_layer_messages() {
    // Syntactically valid: the element, not the parser, decides.
    for name in [
        "badbranch",
        "unkscm",
        "novelsc",
        "unksm2",
        "bext01",
        "invut",
        "regaut01",
        "bcast",
        "zeromf",
        "cparam01",
        "cparam02",
        "regescrt",
        "sdp01",
        "inv2543",
    ] {
        valid(name);
    }
    // Where the RFC says the element answers 400, the parser says why.
    assert!(matches!(parse("insuf"), Err(ParseError::MissingHeader(_))));
    assert!(matches!(
        parse("multi01"),
        Err(ParseError::DuplicateHeader(_) | ParseError::BadHeader { .. })
    ));
    assert!(matches!(
        parse("mcl01"),
        Err(ParseError::DuplicateHeader("Content-Length"))
    ));

    assert_eq!(valid("zeromf").max_forwards(), Some(0));
    assert!(valid("unkscm")
        .request_uri()
        .unwrap()
        .scheme()
        .eq_ignore_ascii_case("nobodyknowsthisscheme"));
    let inv2543 = valid("inv2543");
    assert!(inv2543.top_via().unwrap().branch().is_none());
    assert_eq!(
        inv2543.body().len(),
        105,
        "no Content-Length: the body runs to the end of the datagram"
    );
    let cparam01 = valid("cparam01");
    let sip::header::ContactValue::Addresses(c) = cparam01.contact().unwrap() else {
        panic!()
    };
    assert!(
        c[0].params.contains("unknownparam"),
        "without <> the parameter belongs to the header"
    );
    let cparam02 = valid("cparam02");
    let sip::header::ContactValue::Addresses(c) = cparam02.contact().unwrap() else {
        panic!()
    };
    assert!(
        c[0].uri.as_sip().unwrap().has_param("unknownparam"),
        "inside <> it belongs to the URI"
    );
    assert!(valid("regaut01")
        .header(HeaderName::Authorization)
        .is_some());
}

#[test]
fn a_server_can_answer_what_it_cannot_parse() {
    // The raw answer: it copies the request's headers as they were, so when
    // the broken header is one it must copy (CSeq) it may not parse itself.
    let answer = |name: &str| {
        let raw = load(name);
        let err = Message::parse(raw.clone()).unwrap_err();
        sip::error_response(&raw, &err).map(|b| String::from_utf8(b.to_vec()).unwrap())
    };
    let scalar = answer("scalar02").expect("scalar02 has everything a 400 copies");
    assert!(
        scalar
            .starts_with("SIP/2.0 400 Bad CSeq Header: the CSeq number must be less than 2^31\r\n"),
        "{scalar}"
    );
    assert!(
        scalar.contains("\r\nCall-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\n"),
        "{scalar}"
    );
    assert!(answer("badvers").unwrap().starts_with("SIP/2.0 505 "));
    let mismatch = Message::parse(answer("mismatch01").unwrap().into_bytes()).unwrap();
    assert_eq!(mismatch.status(), Some(400));
    assert!(mismatch.reason_phrase().unwrap().contains("Does Not Match"));
    // multi01 repeats single headers: the answer copies the first of each.
    let multi = answer("multi01").unwrap();
    assert_eq!(multi.matches("\r\nCall-ID: ").count(), 1, "{multi}");
    // Nothing to copy a Call-ID or From from, or not a request: no answer.
    assert!(answer("insuf").is_none());
    assert!(answer("bigcode").is_none(), "responses are never answered");
}
