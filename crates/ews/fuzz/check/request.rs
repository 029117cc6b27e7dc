//! What must hold for any EWS request body: reading it never panics; a
//! refusal carries an EWS error code and a message; an accepted request's
//! operation element, put back into an answer envelope, is well-formed
//! XML that reads again to the same element; every restriction in it reads
//! or is refused without panicking; every id attribute either decodes to
//! an id that encodes back to itself or is refused.

use outpost_ews::{ids, ops::restriction::Filter, soap};
use outpost_xml::Element;

fn walk(el: &Element, depth: usize) {
    if depth > 64 {
        return;
    }
    if el.name.local == "Restriction" {
        if let Ok(f) = Filter::read(el) {
            let _ = f.fields();
            let _ = f.eval(&|_| Some("x".to_string()));
            let _ = f.eval(&|_| None);
        }
    }
    for (name, value) in &el.attributes {
        if name.local == "Id" || name.local == "ChangeKey" {
            match ids::decode(value) {
                Some(ids::Decoded::Folder { owner, collection }) => {
                    assert_eq!(
                        ids::decode(&ids::folder_id(owner, collection)),
                        ids::decode(value)
                    );
                }
                Some(ids::Decoded::Item {
                    owner,
                    collection,
                    item,
                }) => {
                    assert_eq!(
                        ids::decode(&ids::item_id(owner, collection, item)),
                        ids::decode(value)
                    );
                }
                Some(ids::Decoded::Occurrence {
                    owner,
                    collection,
                    item,
                    recurrence,
                }) => {
                    assert_eq!(
                        ids::decode(&ids::occurrence_id(owner, collection, item, recurrence)),
                        ids::decode(value)
                    );
                }
                None => {}
            }
            let _ = ids::change_key_modseq(value);
        }
    }
    for c in &el.children {
        walk(c, depth + 1);
    }
}

pub fn request(data: &[u8]) {
    let limits = soap::limits(64 * 1024);
    match soap::parse(data, &limits) {
        Err(f) => {
            assert!(f.code.starts_with("Error"), "{f:?}");
            assert!(!f.message.is_empty());
            let out = soap::fault(soap::DEFAULT_VERSION, &f);
            outpost_xml::parse(out.as_bytes(), &outpost_xml::Limits::default())
                .expect("a fault is well-formed");
        }
        Ok(req) => {
            walk(&req.operation, 0);
            let out = soap::envelope(&req.version, req.operation.clone());
            let back = outpost_xml::parse(
                out.as_bytes(),
                &outpost_xml::Limits {
                    max_size: 1 << 22,
                    ..soap::limits(1 << 22)
                },
            )
            .expect("an answer is well-formed");
            let body = back
                .child(soap::NS_SOAP, "Body")
                .and_then(|b| b.children.first())
                .expect("the answer has its body");
            assert_eq!(body.name, req.operation.name);
        }
    }
}
