//! CREATE, DELETE, RENAME, SUBSCRIBE, LIST/LSUB and STATUS.

use super::*;

/// `%` matches within one level, `*` across levels (RFC 3501 6.3.8).
fn wildcard(pat: &[char], name: &[char]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|i| wildcard(rest, &name[i..])),
        Some(('%', rest)) => {
            for i in 0..=name.len() {
                if wildcard(rest, &name[i..]) {
                    return true;
                }
                if i < name.len() && name[i] == '/' {
                    return false;
                }
            }
            false
        }
        Some((c, rest)) => name.first() == Some(c) && wildcard(rest, &name[1..]),
    }
}

pub(super) fn list_match(pattern: &str, name: &str) -> bool {
    // INBOX is case-insensitive, also as the first level of a pattern.
    let mut p = pattern.to_string();
    if p.len() >= 5 && p.is_char_boundary(5) && p[..5].eq_ignore_ascii_case("inbox") {
        let rest = &p[5..];
        if rest.is_empty() || rest.starts_with('/') {
            p = format!("INBOX{rest}");
        }
    }
    let pat: Vec<char> = p.chars().collect();
    let name: Vec<char> = name.chars().collect();
    wildcard(&pat, &name)
}

impl Session {
    pub(super) fn principal(&self) -> i64 {
        self.user().map_or(0, |u| u.principal_id)
    }

    pub(super) async fn create(
        &mut self,
        tag: &Tag,
        mailbox: Mailbox,
        special_use: Vec<MailboxAttr>,
    ) {
        let name = mailbox.as_str().trim_end_matches('/').to_string();
        let store = self.ctx.storage.clone();
        let p = self.principal();
        if name.is_empty() {
            return self.no(tag, Some(Code::Cannot), "Invalid mailbox name");
        }
        match store.mailbox(p, &name).await {
            Ok(Some(_)) => {
                return self.no(tag, Some(Code::AlreadyExists), "Mailbox already exists")
            }
            Ok(None) => {}
            Err(e) => return self.send(store_err(tag, &e)),
        }
        if special_use.len() > 1 || special_use.iter().any(|a| !a.is_special_use()) {
            return self.no(
                tag,
                Some(Code::UseAttr),
                "One special-use attribute at most",
            );
        }
        // Create missing parents first (RFC 3501 6.3.3).
        let mut prefix = String::new();
        let levels: Vec<&str> = name.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(level);
            let last = i + 1 == levels.len();
            if !last {
                match store.mailbox(p, &prefix).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => return self.send(store_err(tag, &e)),
                }
            }
            let su = if last {
                special_use.first().map(|a| a.to_string())
            } else {
                None
            };
            if let Err(e) = store.create_mailbox(p, &prefix, su).await {
                return self.send(store_err(tag, &e));
            }
        }
        self.ok(tag, "CREATE completed");
    }

    pub(super) async fn delete(&mut self, tag: &Tag, mailbox: Mailbox) {
        if mailbox.is_inbox() {
            return self.no(tag, Some(Code::Cannot), "INBOX cannot be deleted");
        }
        let store = self.ctx.storage.clone();
        match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => match store.delete_mailbox(mb.id).await {
                Ok(()) => {
                    if self.selected().map(|s| s.id) == Some(mb.id) {
                        self.deselect();
                    }
                    self.ok(tag, "DELETE completed")
                }
                Err(e) => self.send(store_err(tag, &e)),
            },
            Ok(None) => self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    pub(super) async fn rename(&mut self, tag: &Tag, from: Mailbox, to: Mailbox) {
        let store = self.ctx.storage.clone();
        let p = self.principal();
        match store.mailbox(p, from.as_str()).await {
            Ok(Some(_)) => {}
            Ok(None) => return self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        }
        match store.mailbox(p, to.as_str()).await {
            Ok(Some(_)) => return self.no(tag, Some(Code::AlreadyExists), "Target mailbox exists"),
            Ok(None) => {}
            Err(e) => return self.send(store_err(tag, &e)),
        }
        match store
            .rename_mailbox(p, from.as_str(), to.as_str().trim_end_matches('/'))
            .await
        {
            Ok(()) => self.ok(tag, "RENAME completed"),
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    pub(super) async fn subscribe(&mut self, tag: &Tag, mailbox: Mailbox, on: bool) {
        let store = self.ctx.storage.clone();
        let verb = if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
        match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => match store.set_subscribed(mb.id, on).await {
                Ok(()) => self.ok(tag, &format!("{verb} completed")),
                Err(e) => self.send(store_err(tag, &e)),
            },
            Ok(None) if !on => self.ok(tag, "UNSUBSCRIBE completed"),
            Ok(None) => self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    pub(super) async fn list(&mut self, tag: &Tag, l: ListCommand, lsub: bool) {
        let verb = if lsub { "LSUB" } else { "LIST" };
        if !lsub && l.patterns.len() == 1 && l.patterns[0].is_empty() {
            self.send(Data::List(ListItem::new(
                Mailbox::new(""),
                Some('/'),
                vec![MailboxAttr::NoSelect],
            )));
            return self.ok(tag, "LIST completed");
        }
        let all = match self.ctx.storage.mailboxes(self.principal()).await {
            Ok(v) => v,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let patterns: Vec<String> = l
            .patterns
            .iter()
            .map(|p| format!("{}{}", l.reference, p))
            .collect();
        let matches = |name: &str| patterns.iter().any(|p| list_match(p, name));
        let names: std::collections::BTreeMap<&str, &MailboxInfo> =
            all.iter().map(|m| (m.name.as_str(), m)).collect();
        // Parents that are not mailboxes themselves.
        let mut ghosts: std::collections::BTreeSet<String> = Default::default();
        for m in &all {
            let mut n = m.name.as_str();
            while let Some((parent, _)) = n.rsplit_once('/') {
                if !names.contains_key(parent) {
                    ghosts.insert(parent.to_string());
                }
                n = parent;
            }
        }
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            all.iter().any(|m| m.name.starts_with(&prefix))
        };
        let subscribed_child = |name: &str| {
            let prefix = format!("{name}/");
            all.iter()
                .any(|m| m.subscribed && m.name.starts_with(&prefix))
        };
        let ext = l.is_extended();
        let mut items: Vec<(ListItem, Option<&MailboxInfo>)> = Vec::new();
        let mut candidates: Vec<(String, Option<&MailboxInfo>)> = all
            .iter()
            .map(|m| (m.name.clone(), Some(m)))
            .chain(ghosts.iter().map(|g| (g.clone(), None)))
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mb) in candidates {
            if !matches(&name) {
                continue;
            }
            let mut attrs = Vec::new();
            let mut child_info = false;
            match mb {
                None => {
                    // A ghost parent: shown only when no child matched too
                    // (`%`), or with RECURSIVEMATCH for subscribed children.
                    let prefix = format!("{name}/");
                    let child_matched = all
                        .iter()
                        .any(|m| m.name.starts_with(&prefix) && matches(&m.name));
                    if l.selection.subscribed {
                        if !(l.selection.recursive_match && subscribed_child(&name)) {
                            continue;
                        }
                        child_info = true;
                        attrs.push(MailboxAttr::NonExistent);
                    } else if l.selection.special_use || child_matched {
                        continue;
                    } else if ext {
                        attrs.push(MailboxAttr::NonExistent);
                    } else {
                        attrs.push(MailboxAttr::NoSelect);
                    }
                }
                Some(m) => {
                    if l.selection.subscribed && !m.subscribed {
                        if l.selection.recursive_match && subscribed_child(&name) {
                            child_info = true;
                        } else {
                            continue;
                        }
                    }
                    if l.selection.special_use && m.special_use.is_none() {
                        continue;
                    }
                    if !lsub && (l.selection.subscribed || l.returns.subscribed) && m.subscribed {
                        attrs.push(MailboxAttr::Subscribed);
                    }
                    if !lsub {
                        if let Some(su) = m
                            .special_use
                            .as_deref()
                            .and_then(|s| MailboxAttr::parse(s).ok())
                        {
                            attrs.push(su);
                        }
                    }
                }
            }
            if !lsub {
                attrs.push(if has_children(&name) {
                    MailboxAttr::HasChildren
                } else {
                    MailboxAttr::HasNoChildren
                });
            }
            let mut item = ListItem::new(Mailbox::new(name), Some('/'), attrs);
            item.child_info_subscribed = child_info && ext;
            items.push((item, mb));
        }
        let status_items = l.returns.status.clone();
        for (item, mb) in items {
            let selectable = mb.is_some();
            let mbname = item.mailbox.clone();
            self.send(if lsub {
                Data::Lsub(item)
            } else {
                Data::List(item)
            });
            if let (Some(si), true) = (&status_items, selectable) {
                match self.status(&mbname, si).await {
                    Ok(Some(d)) => self.send(d),
                    Ok(None) => {}
                    Err(e) => return self.send(store_err(tag, &e)),
                }
            }
        }
        self.ok(tag, &format!("{verb} completed"));
    }

    pub(super) async fn status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<Option<Data>, StorageError> {
        let store = &self.ctx.storage;
        let Some(mb) = store.mailbox(self.principal(), mailbox.as_str()).await? else {
            return Ok(None);
        };
        let st = store.status(mb.id).await?;
        let values = items
            .iter()
            .map(|i| match i {
                StatusItem::Messages => StatusValue::Messages(st.messages as u32),
                StatusItem::Recent => StatusValue::Recent(0),
                StatusItem::UidNext => StatusValue::UidNext(st.uidnext as u32),
                StatusItem::UidValidity => StatusValue::UidValidity(st.uidvalidity as u32),
                StatusItem::Unseen => StatusValue::Unseen(st.unseen as u32),
                StatusItem::HighestModSeq => StatusValue::HighestModSeq(st.highest_modseq as u64),
                StatusItem::Size => StatusValue::Size(st.size as u64),
                StatusItem::AppendLimit => {
                    StatusValue::AppendLimit(Some(self.ctx.limits.max_literal))
                }
                StatusItem::Deleted => StatusValue::Deleted(st.deleted as u32),
                StatusItem::MailboxId => StatusValue::MailboxId(mailbox_id(&mb)),
            })
            .collect();
        Ok(Some(Data::Status {
            mailbox: mailbox.clone(),
            items: values,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_wildcards() {
        assert!(list_match("*", "a/b/c"));
        assert!(list_match("%", "a"));
        assert!(!list_match("%", "a/b"));
        assert!(list_match("a/%", "a/b"));
        assert!(!list_match("a/%", "a/b/c"));
        assert!(list_match("a/*", "a/b/c"));
        assert!(list_match("inbox", "INBOX"));
        assert!(list_match("Inbox/%", "INBOX/x"));
        assert!(!list_match("inbox", "Inboxes"));
        assert!(list_match("%x%", "axb"));
        assert!(!list_match("Sent", "sent"));
    }
}
