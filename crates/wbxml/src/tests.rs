use super::*;
use std::collections::HashSet;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

const HEADER: [u8; 4] = [0x03, 0x01, 0x6A, 0x00];

fn doc(body: &[u8]) -> Vec<u8> {
    let mut d = HEADER.to_vec();
    d.extend_from_slice(body);
    d
}

fn dec(body: &[u8]) -> Result<Element, Error> {
    decode(&doc(body), &Limits::default())
}

#[test]
fn every_page_is_numbered_by_its_index_and_named_once() {
    let mut names = HashSet::new();
    let mut namespaces = HashSet::new();
    for (i, p) in PAGES.iter().enumerate() {
        assert_eq!(usize::from(p.number), i, "{}", p.name);
        assert!(names.insert(p.name), "page name {} twice", p.name);
        assert!(namespaces.insert(p.namespace), "{}", p.namespace);
        assert!(p.namespace.ends_with(':'));
        assert!(std::ptr::eq(page_by_namespace(p.namespace).unwrap(), p));
        assert!(std::ptr::eq(
            page_by_namespace(p.namespace.trim_end_matches(':')).unwrap(),
            p
        ));
    }
    assert_eq!(PAGES.len(), 26);
    assert!(page(26).is_none());
    assert!(page_by_namespace("DAV:").is_none());
}

/// Each (page, token) maps to one name and the name back to the token;
/// tokens are tag tokens (0x05-0x3F), in order; binary tags are tags.
#[test]
fn each_token_maps_to_one_name_and_back() {
    let mut total = 0;
    for p in PAGES.iter() {
        let mut seen_names = HashSet::new();
        let mut last = 0x04;
        for &(t, name) in p.tags {
            assert!((0x05..=0x3F).contains(&t), "{} {t:#x}", p.name);
            assert!(t > last, "{}: {t:#x} out of order or twice", p.name);
            last = t;
            assert!(seen_names.insert(name), "{}: {name} twice", p.name);
            assert_eq!(p.name_of(t), Some(name));
            assert_eq!(p.token_of(name), Some(t), "{}:{name}", p.name);
            let tag = Tag::new(p.number, t).unwrap();
            assert_eq!(tag.name(), name);
            assert_eq!(Tag::named(p.name, name), Some(tag));
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()));
            total += 1;
        }
        for &b in p.binary {
            assert!(p.name_of(b).is_some(), "{} binary {b:#x}", p.name);
        }
        for t in 0..=0x3F {
            assert_eq!(Tag::new(p.number, t).is_some(), p.name_of(t).is_some());
        }
    }
    for &(page, name, token) in pages::ALIASES {
        let p = pages::page(page).unwrap();
        assert!(p.name_of(token).is_some());
        assert_ne!(p.name_of(token), Some(name));
        assert_eq!(p.token_of(name), Some(token));
    }
    // Every tag of the 26 pages: a change here is a change of the tables.
    assert_eq!(total, 642);
}

/// Spot checks against MS-ASWBXML's tables, one or two per page, where
/// a slip would be easy.
#[test]
fn tokens_as_the_spec_lists_them() {
    let cases: &[(&str, &str, u8)] = &[
        ("AirSync", "Sync", 0x05),
        ("AirSync", "HeartbeatInterval", 0x29),
        ("Contacts", "WeightedRank", 0x3E),
        ("Email", "DisallowNewTimeProposal", 0x3F),
        ("AirNotify", "DeviceFriendlyName", 0x17),
        ("Calendar", "ClientUid", 0x3C),
        ("Calendar", "DisallowNewTimeProposal", 0x33),
        ("Move", "DstMsgId", 0x0C),
        ("GetItemEstimate", "Estimate", 0x0C),
        ("FolderHierarchy", "FolderSync", 0x16),
        ("MeetingResponse", "SendResponse", 0x12),
        ("Tasks", "FirstDayOfWeek", 0x26),
        ("ResolveRecipients", "MaxPictures", 0x1D),
        ("ValidateCert", "Status", 0x0A),
        ("Contacts2", "MMS", 0x0E),
        ("Ping", "MaxFolders", 0x0D),
        ("Provision", "AccountOnlyRemoteWipe", 0x3B),
        ("Provision", "RequireStorageCardEncryption", 0x10),
        ("Provision", "DeviceEncryptionEnabled", 0x10),
        ("Search", "MaxPictures", 0x23),
        ("GAL", "Data", 0x12),
        ("AirSyncBase", "InstanceId", 0x2D),
        ("Settings", "RightsManagementInformation", 0x2B),
        ("DocumentLibrary", "ContentType", 0x0C),
        ("ItemOperations", "MoveAlways", 0x19),
        ("ComposeMail", "ForwardeeEmail", 0x18),
        ("Email2", "Send", 0x17),
        ("Notes", "Category", 0x09),
        ("RightsManagement", "RemoveRightsManagementProtection", 0x18),
        ("Find", "Picture", 0x22),
        ("Find", "Response", 0x11),
    ];
    for &(p, name, token) in cases {
        assert_eq!(
            Tag::named(p, name).map(Tag::token),
            Some(token),
            "{p}:{name}"
        );
    }
    assert_eq!(
        Tag::named("Provision", "DeviceEncryptionEnabled")
            .unwrap()
            .name(),
        "RequireStorageCardEncryption"
    );
}

/// MS-ASWBXML section 4 (example of a Sync response adding a contact),
/// byte for byte: our encoder writes it and our decoder reads it.
#[test]
fn spec_example_sync_response_with_a_contact() {
    let bytes = hex(
        "03 01 6A 00 45 5C 4F 50 03 43 6F 6E 74 61 63 74 73 00 01 4B 03 32 00 01
         52 03 32 00 01 4E 03 31 00 01 56 47 4D 03 32 3A 31 00 01 5D 00 11 4A 46
         03 31 00 01 4C 03 30 00 01 4D 03 31 00 01 01 00 01 5E 03 46 75 6E 6B 2C
         20 44 6F 6E 00 01 5F 03 44 6F 6E 00 01 69 03 46 75 6E 6B 00 01 00 11 56
         03 31 00 01 01 01 01 01 01 01",
    );
    let t = |p: &str, n: &str, v: &str| Element::named(p, n).with_text(v);
    let tree = Element::named("AirSync", "Sync").with(
        Element::named("AirSync", "Collections").with(
            Element::named("AirSync", "Collection")
                .with(t("AirSync", "Class", "Contacts"))
                .with(t("AirSync", "SyncKey", "2"))
                .with(t("AirSync", "CollectionId", "2"))
                .with(t("AirSync", "Status", "1"))
                .with(
                    Element::named("AirSync", "Commands").with(
                        Element::named("AirSync", "Add")
                            .with(t("AirSync", "ServerId", "2:1"))
                            .with(
                                Element::named("AirSync", "ApplicationData")
                                    .with(
                                        Element::named("AirSyncBase", "Body")
                                            .with(t("AirSyncBase", "Type", "1"))
                                            .with(t("AirSyncBase", "EstimatedDataSize", "0"))
                                            .with(t("AirSyncBase", "Truncated", "1")),
                                    )
                                    .with(t("Contacts", "FileAs", "Funk, Don"))
                                    .with(t("Contacts", "FirstName", "Don"))
                                    .with(t("Contacts", "LastName", "Funk"))
                                    .with(t("AirSyncBase", "NativeBodyType", "1")),
                            ),
                    ),
                ),
        ),
    );
    assert_eq!(encode(&tree), bytes);
    assert_eq!(decode(&bytes, &Limits::default()).unwrap(), tree);
    let xml = to_xml(&tree);
    assert!(
        xml.contains("<Sync xmlns=\"AirSync:\"><Collections><Collection><Class>Contacts</Class>")
    );
    assert!(xml.contains("<Body xmlns=\"AirSyncBase:\"><Type>1</Type>"));
    assert!(xml.contains("<FileAs xmlns=\"Contacts:\">Funk, Don</FileAs>"));
    assert_eq!(from_xml(xml.as_bytes(), &Limits::default()).unwrap(), tree);
}

#[test]
fn empty_tags_strings_and_opaque() {
    // <Sync><Collections/></Sync>; Subject "" ; ConversationId opaque.
    let t = dec(&[0x45, 0x1C, 0x01]).unwrap();
    assert_eq!(
        t,
        Element::named("AirSync", "Sync").with(Element::named("AirSync", "Collections"))
    );
    let t = dec(&hex("00 02 54 03 00 01")).unwrap();
    assert_eq!(t, Element::named("Email", "Subject").with_text(""));
    let t = dec(&hex("00 16 49 C3 03 00 FF 01 01")).unwrap();
    assert_eq!(
        t,
        Element::named("Email2", "ConversationId").with_opaque(vec![0, 0xFF, 1])
    );
    assert_eq!(t.bytes(), vec![0, 0xFF, 1]);
    assert_eq!(encode(&t), doc(&hex("00 16 49 C3 03 00 FF 01 01")));
    // An opaque length in two bytes.
    let big = vec![7u8; 200];
    let t = Element::named("ComposeMail", "Mime").with_opaque(big.clone());
    let e = encode(&t);
    assert_eq!(&e[4..9], &[0x00, 0x15, 0x50, 0xC3, 0x81]);
    assert_eq!(e[9], 200 - 128);
    assert_eq!(decode(&e, &Limits::default()).unwrap(), t);
}

#[test]
fn page_switches_only_where_the_page_changes() {
    let tree = Element::named("Ping", "Ping")
        .with(Element::named("Ping", "HeartbeatInterval").with_text("480"))
        .with(
            Element::named("Ping", "Folders").with(
                Element::named("Ping", "Folder")
                    .with(Element::named("Ping", "Id").with_text("5"))
                    .with(Element::named("Ping", "Class").with_text("Email")),
            ),
        );
    let e = encode(&tree);
    assert_eq!(&e[..6], &[3, 1, 0x6A, 0, 0x00, 0x0D]);
    // NULs: the string table length, one SWITCH_PAGE, three string ends.
    assert_eq!(e.iter().filter(|&&b| b == 0x00).count(), 5);
    assert_eq!(decode(&e, &Limits::default()).unwrap(), tree);
}

#[test]
fn text_drops_nul_bytes() {
    let t = Element::named("Email", "Subject").with_text("a\0b");
    let back = decode(&encode(&t), &Limits::default()).unwrap();
    assert_eq!(back.text(), "ab");
}

#[test]
fn headers() {
    // libwbxml's xml2wbxml: public id in the string table.
    let mut d = hex("03 00 00 6A 21");
    d.extend_from_slice(b"-//MICROSOFT//DTD ActiveSync//EN\0");
    d.extend_from_slice(&[0x45, 0x1C, 0x01]);
    assert!(decode(&d, &Limits::default())
        .unwrap()
        .is("AirSync", "Sync"));
    // A 1.1 header is read too.
    assert!(decode(&hex("01 01 6A 00 05"), &Limits::default()).is_ok());
    assert_eq!(
        decode(&hex("13 01 6A 00 05"), &Limits::default()),
        Err(Error::Version(0x13))
    );
    assert_eq!(
        decode(&hex("03 01 04 00 05"), &Limits::default()),
        Err(Error::Charset(4))
    );
    assert!(matches!(
        decode(&hex("03 01 6A 05 00"), &Limits::default()),
        Err(Error::Truncated { .. })
    ));
    for n in 0..4 {
        assert!(matches!(
            decode(&HEADER[..n], &Limits::default()),
            Err(Error::Truncated { .. })
        ));
    }
    assert_eq!(decode(&HEADER, &Limits::default()), Err(Error::Empty));
}

#[test]
fn multi_byte_integers_are_bounded() {
    // 0x8F 0xFF 0xFF 0xFF 0x7F is u32::MAX; one more bit is refused.
    let mut r = Reader {
        input: &[0x8F, 0xFF, 0xFF, 0xFF, 0x7F],
        pos: 0,
    };
    assert_eq!(r.mb_u32("x"), Ok(u32::MAX));
    let mut r = Reader {
        input: &[0x90, 0x80, 0x80, 0x80, 0x00],
        pos: 0,
    };
    assert_eq!(r.mb_u32("x"), Err(Error::Integer { offset: 0 }));
    let mut r = Reader {
        input: &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        pos: 0,
    };
    assert_eq!(r.mb_u32("x"), Err(Error::Integer { offset: 0 }));
    let mut r = Reader {
        input: &[0x81, 0x80],
        pos: 0,
    };
    assert!(matches!(r.mb_u32("x"), Err(Error::Truncated { .. })));
    for v in [0, 1, 127, 128, 16383, 16384, u32::MAX] {
        let mut out = Vec::new();
        put_mb_u32(&mut out, v);
        let mut r = Reader {
            input: &out,
            pos: 0,
        };
        assert_eq!(r.mb_u32("x"), Ok(v));
        assert_eq!(r.pos, out.len());
    }
}

#[test]
fn bad_documents_are_errors() {
    let unknown = dec(&hex("00 1A 45 01"));
    assert_eq!(
        unknown,
        Err(Error::UnknownPage {
            page: 26,
            offset: 4
        })
    );
    assert!(unknown.unwrap_err().is_unknown_tag());
    // Token 0x2B is not defined on the Calendar page.
    let e = dec(&hex("00 04 6B 01")).unwrap_err();
    assert_eq!(
        e,
        Error::UnknownTag {
            page: 4,
            name: "Calendar",
            token: 0x2B,
            offset: 6
        }
    );
    assert!(e.is_unknown_tag());
    assert_eq!(dec(&hex("C5 01")), Err(Error::Attributes { offset: 4 }));
    assert_eq!(dec(&hex("85")), Err(Error::Attributes { offset: 4 }));
    for t in [
        0x02, 0x04, 0x40, 0x41, 0x42, 0x43, 0x44, 0x80, 0x83, 0x84, 0xC0, 0xC4,
    ] {
        assert!(
            matches!(dec(&[0x45, t, 0x01]), Err(Error::Unsupported { token, offset: 5, .. }) if token == t),
            "{t:#x}"
        );
    }
    assert!(matches!(
        dec(&hex("45 03 61")),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        dec(&hex("45 C3 05 61")),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(dec(&hex("45 5C")), Err(Error::Truncated { .. })));
    assert!(matches!(dec(&hex("45 00")), Err(Error::Truncated { .. })));
    assert_eq!(
        dec(&hex("45 03 FF 00 01")),
        Err(Error::NotUtf8 { offset: 5 })
    );
    assert!(matches!(dec(&hex("05 05")), Err(Error::OutsideRoot { .. })));
    assert!(matches!(dec(&hex("05 01")), Err(Error::OutsideRoot { .. })));
    assert!(matches!(
        dec(&hex("03 61 00 05")),
        Err(Error::OutsideRoot { .. })
    ));
    assert!(matches!(
        dec(&hex("C3 00 05")),
        Err(Error::OutsideRoot { .. })
    ));
    // A switch to a page with nothing after it, and SWITCH_PAGE alone.
    assert_eq!(dec(&hex("00 02")), Err(Error::Empty));
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_size: 64,
        max_depth: 4,
        max_elements: 5,
        max_string: 5,
    };
    let ok = doc(&hex("45 5C 4F 4B 03 31 32 33 34 35 00 01 01 01 01"));
    assert!(decode(&ok, &limits).is_ok());
    let deep = doc(&hex("45 5C 4F 4F 4F 01 01 01 01 01"));
    assert_eq!(decode(&deep, &limits), Err(Error::TooDeep(4)));
    let deep_empty = doc(&hex("45 5C 4F 4F 0F 01 01 01 01"));
    assert_eq!(decode(&deep_empty, &limits), Err(Error::TooDeep(4)));
    let many = doc(&hex("45 1C 1C 1C 1C 1C 01"));
    assert_eq!(decode(&many, &limits), Err(Error::TooManyElements(5)));
    let long = doc(&hex("45 03 31 32 33 34 35 36 00 01"));
    assert_eq!(
        decode(&long, &limits),
        Err(Error::StringTooLong {
            offset: 5,
            limit: 5
        })
    );
    let long_unterminated = doc(&hex("45 03 31 32 33 34 35 36"));
    assert!(matches!(
        decode(&long_unterminated, &limits),
        Err(Error::StringTooLong { .. })
    ));
    let opaque = doc(&hex("45 C3 06 31 32 33 34 35 36 01"));
    assert!(matches!(
        decode(&opaque, &limits),
        Err(Error::StringTooLong { .. })
    ));
    assert_eq!(
        decode(&[0u8; 65], &limits),
        Err(Error::TooLarge {
            size: 65,
            limit: 64
        })
    );
}

#[test]
fn encoding_a_deep_tree_uses_no_recursion() {
    let mut el = Element::named("AirSync", "Sync");
    for _ in 0..100_000 {
        el = Element::named("AirSync", "Sync").with(el);
    }
    let bytes = encode(&el);
    assert_eq!(bytes.len(), 4 + 100_001 + 100_000);
    let xml = to_xml(&el);
    assert!(xml.len() > 100_000);
    // The decoder refuses it by depth, not by overflowing the stack.
    assert_eq!(decode(&bytes, &Limits::default()), Err(Error::TooDeep(64)));
    // Dropping such a tree would recurse; leak it in this test.
    std::mem::forget(el);
}

#[test]
fn xml_form() {
    let tree = Element::named("FolderHierarchy", "FolderSync")
        .with(Element::named("FolderHierarchy", "SyncKey").with_text("0"))
        .with(
            Element::named("AirSync", "Sync")
                .with(Element::named("Email", "Subject").with_text("<a & b>\r"))
                .with(Element::named("Email2", "ConversationId").with_opaque(vec![1, 2, 0xFF]))
                .with(Element::named("AirSync", "Commands")),
        );
    let xml = to_xml(&tree);
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <FolderSync xmlns=\"FolderHierarchy:\"><SyncKey>0</SyncKey>\
         <Sync xmlns=\"AirSync:\"><Subject xmlns=\"Email:\">&lt;a &amp; b&gt;&#13;</Subject>\
         <ConversationId xmlns=\"Email2:\">AQL/</ConversationId><Commands/></Sync></FolderSync>"
    );
    assert_eq!(from_xml(xml.as_bytes(), &Limits::default()).unwrap(), tree);
    // The prefixed form and namespaces without the colon read the same.
    let prefixed = "<f:FolderSync xmlns:f=\"FolderHierarchy\" xmlns=\"AirSync\" xmlns:e=\"Email:\" xmlns:e2=\"Email2:\">\n  \
        <f:SyncKey>0</f:SyncKey>\n  <Sync><e:Subject>&lt;a &amp; b&gt;&#13;</e:Subject>\
        <e2:ConversationId>AQL/</e2:ConversationId><Commands></Commands></Sync>\n</f:FolderSync>";
    assert_eq!(
        from_xml(prefixed.as_bytes(), &Limits::default()).unwrap(),
        tree
    );
}

#[test]
fn bad_xml_is_refused() {
    let l = Limits::default();
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"y\">]><Sync xmlns=\"AirSync:\">&x;</Sync>";
    assert!(matches!(from_xml(bomb.as_bytes(), &l), Err(Error::Xml(_))));
    assert_eq!(
        from_xml(b"<Sync xmlns=\"DAV:\"/>", &l),
        Err(Error::UnknownNamespace("DAV:".into()))
    );
    assert_eq!(
        from_xml(b"<Sync/>", &l),
        Err(Error::UnknownNamespace("".into()))
    );
    let e = from_xml(b"<Synk xmlns=\"AirSync:\"/>", &l).unwrap_err();
    assert!(e.is_unknown_tag(), "{e}");
    assert_eq!(
        from_xml(b"<Sync xmlns=\"AirSync:\" a=\"1\"/>", &l),
        Err(Error::XmlAttributes("Sync".into()))
    );
    assert!(matches!(
        from_xml(b"<Sync xmlns=\"AirSync:\">x<Commands/></Sync>", &l),
        Err(Error::MixedContent(_))
    ));
    assert!(matches!(
        from_xml(b"<Mime xmlns=\"ComposeMail:\">not base64!</Mime>", &l),
        Err(Error::Base64(_))
    ));
    let deep = format!(
        "{}{}",
        "<Sync xmlns=\"AirSync:\">".repeat(65),
        "</Sync>".repeat(65)
    );
    assert!(matches!(
        from_xml(deep.as_bytes(), &l),
        Err(Error::Xml(outpost_xml::XmlError::TooDeep(64)))
    ));
}

#[test]
fn base64_both_ways() {
    use crate::xml::{base64_decode, base64_encode};
    for (raw, b64) in [
        (&b""[..], ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg=="),
        (b"fooba", "Zm9vYmE="),
        (b"foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_encode(raw), b64);
        assert_eq!(base64_decode(b64).as_deref(), Some(raw));
    }
    assert_eq!(base64_decode("Zm9v\r\nYg").as_deref(), Some(&b"foob"[..]));
    for bad in ["Z", "Zh==", "Zg=a", "Zg===", "Z*=="] {
        assert_eq!(base64_decode(bad), None, "{bad}");
    }
}

/// The bad input issue 16 names: a Sync of 100,000 items is refused by
/// the element limit, and opaque data claiming 4 GiB in a short body is
/// refused as truncated before anything is allocated for it.
#[test]
fn huge_requests_are_errors_not_crashes() {
    let mut body = hex("45 5C 4F 56");
    body.extend(std::iter::repeat_n(0x07, 100_000)); // <Add/> x 100,000
    body.extend_from_slice(&[0x01, 0x01, 0x01, 0x01]);
    assert_eq!(dec(&body), Err(Error::TooManyElements(100_000)));
    let roomy = Limits {
        max_elements: 200_000,
        ..Limits::default()
    };
    let t = decode(&doc(&body), &roomy).unwrap();
    assert_eq!(t.elements().count(), 1);

    let huge = dec(&hex("45 C3 8F FF FF FF 7F 00 01"));
    assert!(matches!(huge, Err(Error::StringTooLong { .. })), "{huge:?}");
    let roomy = Limits {
        max_string: usize::MAX,
        ..Limits::default()
    };
    assert!(matches!(
        decode(&doc(&hex("45 C3 8F FF FF FF 7F 00 01")), &roomy),
        Err(Error::Truncated { .. })
    ));
}
