//! `/EWS/Services.wsdl`: a WSDL 1.1 description of the operations this
//! server answers ([`crate::ops::OPERATIONS`]), bound to SOAP 1.1 over
//! HTTP at this server's EWS address. Messages are described by their
//! element names in the EWS messages namespace; the schemas themselves
//! are Microsoft's (messages.xsd, types.xsd), which are not served here.

use crate::ops::OPERATIONS;
use crate::soap::{NS_M, NS_T};

/// The WSDL for a server reached at `base` (`https://host[:port]`).
pub fn document(base: &str) -> String {
    use outpost_xml::Element;
    const WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
    const SOAPB: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
    let mut defs = Element::new(WSDL, "definitions").with_attr("targetNamespace", NS_M);
    defs.push(Element::new(WSDL, "types"));
    let mut port_type = Element::new(WSDL, "portType").with_attr("name", "ExchangeServicePortType");
    let mut binding = Element::new(WSDL, "binding")
        .with_attr("name", "ExchangeServiceBinding")
        .with_attr("type", "tns:ExchangeServicePortType")
        .with(
            Element::new(SOAPB, "binding")
                .with_attr("style", "document")
                .with_attr("transport", "http://schemas.xmlsoap.org/soap/http"),
        );
    for op in OPERATIONS {
        // The OOF and availability operations' request elements carry a
        // Request suffix.
        let (req, resp) = if op.ends_with("OofSettings") || *op == "GetUserAvailability" {
            (format!("{op}Request"), format!("{op}Response"))
        } else {
            (op.to_string(), format!("{op}Response"))
        };
        for (name, element) in [(format!("{op}SoapIn"), req), (format!("{op}SoapOut"), resp)] {
            defs.push(
                Element::new(WSDL, "message").with_attr("name", name).with(
                    Element::new(WSDL, "part")
                        .with_attr("name", "request")
                        .with_attr("element", format!("tns:{element}")),
                ),
            );
        }
        port_type.push(
            Element::new(WSDL, "operation")
                .with_attr("name", *op)
                .with(Element::new(WSDL, "input").with_attr("message", format!("tns:{op}SoapIn")))
                .with(
                    Element::new(WSDL, "output").with_attr("message", format!("tns:{op}SoapOut")),
                ),
        );
        binding.push(
            Element::new(WSDL, "operation")
                .with_attr("name", *op)
                .with(Element::new(SOAPB, "operation").with_attr(
                    "soapAction",
                    format!("http://schemas.microsoft.com/exchange/services/2006/messages/{op}"),
                ))
                .with(
                    Element::new(WSDL, "input")
                        .with(Element::new(SOAPB, "body").with_attr("use", "literal")),
                )
                .with(
                    Element::new(WSDL, "output")
                        .with(Element::new(SOAPB, "body").with_attr("use", "literal")),
                ),
        );
    }
    defs.push(port_type);
    defs.push(binding);
    defs.push(
        Element::new(WSDL, "service")
            .with_attr("name", "ExchangeServices")
            .with(
                Element::new(WSDL, "port")
                    .with_attr("name", "ExchangeServicePort")
                    .with_attr("binding", "tns:ExchangeServiceBinding")
                    .with(
                        Element::new(SOAPB, "address")
                            .with_attr("location", format!("{base}{}", crate::PATH)),
                    ),
            ),
    );
    outpost_xml::write(
        &defs,
        &[(WSDL, "wsdl"), (SOAPB, "soap"), (NS_M, "tns"), (NS_T, "t")],
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_well_formed_and_lists_operations() {
        let d = super::document("https://mail.example.test");
        let root = outpost_xml::parse(d.as_bytes(), &Default::default()).unwrap();
        assert_eq!(root.name.local, "definitions");
        assert!(d.contains("https://mail.example.test/EWS/Exchange.asmx"));
        for op in crate::ops::OPERATIONS {
            assert!(d.contains(&format!("name=\"{op}\"")), "{op}");
        }
    }
}
