//! APPEND (with MULTIAPPEND) and the QUOTA commands.

use super::*;

impl Session {
    pub(super) async fn append(
        &mut self,
        tag: &Tag,
        mailbox: Mailbox,
        messages: Vec<AppendMessage>,
    ) {
        let store = self.ctx.storage.clone();
        let mb = match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, Some(Code::TryCreate), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        // Check everything before storing anything (MULTIAPPEND is
        // all-or-nothing as far as checks go).
        let mut total: u64 = 0;
        for m in &messages {
            match &m.content {
                AppendContent::Literal { data, .. } => {
                    if data.is_empty() {
                        return self.no(tag, None, "Empty message");
                    }
                    if data.len() as u64 > self.ctx.limits.max_literal {
                        return self.no(tag, Some(Code::TooBig), "Message too large");
                    }
                    total += data.len() as u64;
                }
                AppendContent::Catenate(_) => {
                    return self.no(tag, Some(Code::Cannot), "CATENATE is not supported");
                }
            }
        }
        let quota = self.user().map_or(0, |u| u.quota_bytes);
        if quota > 0 {
            match store.usage(self.principal()).await {
                Ok(used) if used as u64 + total > quota as u64 => {
                    return self.no(tag, Some(Code::OverQuota), "Quota exceeded");
                }
                Ok(_) => {}
                Err(e) => return self.send(store_err(tag, &e)),
            }
        }
        // All messages in one transaction: MULTIAPPEND appends all of them
        // or none (RFC 3502 §6.3.11).
        let mut items = Vec::with_capacity(messages.len());
        for m in messages {
            let AppendContent::Literal { data, .. } = m.content else {
                continue;
            };
            let (flags, keywords) = flag_bits(&m.flags);
            let date = m.date.map(|d| d.unix_timestamp()).unwrap_or_else(now);
            items.push(NewMessage {
                data: data.into(),
                flags,
                keywords,
                internal_date: date,
            });
        }
        let mut uids = Vec::new();
        let mut uidvalidity = mb.uidvalidity;
        match store.append(mb.id, items).await {
            Ok(filed) => {
                for d in filed {
                    uids.push(d.uid as u32);
                    uidvalidity = d.uidvalidity;
                }
            }
            Err(e) => {
                tracing::warn!(session = self.net.id, "imap: append failed: {e}");
                return self.send(store_err(tag, &e));
            }
        }
        let code = Code::AppendUid {
            uid_validity: uidvalidity as u32,
            uids: SequenceSet::from_numbers(uids.iter().copied()),
        };
        self.send(StatusResponse::ok(Some(tag.clone()), "APPEND completed").with_code(code));
    }

    pub(super) async fn quota(&mut self, tag: &Tag) {
        let quota = self.user().map_or(0, |u| u.quota_bytes);
        if quota <= 0 {
            return self.no(tag, Some(Code::Nonexistent), "No quota");
        }
        match self.ctx.storage.usage(self.principal()).await {
            Ok(used) => {
                self.send(Data::Quota {
                    root: String::new(),
                    resources: vec![QuotaResource {
                        name: Atom::new("STORAGE").unwrap(),
                        usage: (used as u64).div_ceil(1024),
                        limit: quota as u64 / 1024,
                    }],
                });
                self.ok(tag, "GETQUOTA completed");
            }
            Err(e) => self.send(store_err(tag, &e)),
        }
    }
}
