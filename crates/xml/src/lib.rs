//! Safe XML.
