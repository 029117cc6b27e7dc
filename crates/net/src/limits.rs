use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Connection limits of one listener: per client address and in total.
/// A permit is held for the life of a connection and released on drop.
#[derive(Clone)]
pub struct ConnLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    per_ip: usize,
    total: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooManyFromAddress,
    TooManyTotal,
}

impl ConnLimiter {
    pub fn new(per_ip: usize, total: usize) -> ConnLimiter {
        ConnLimiter {
            inner: Arc::new(Inner {
                per_ip,
                total,
                state: Mutex::default(),
            }),
        }
    }

    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnPermit, Refused> {
        let mut st = self.inner.state.lock().unwrap();
        if st.total >= self.inner.total {
            return Err(Refused::TooManyTotal);
        }
        let n = st.by_ip.entry(ip).or_insert(0);
        if *n >= self.inner.per_ip {
            return Err(Refused::TooManyFromAddress);
        }
        *n += 1;
        st.total += 1;
        Ok(ConnPermit {
            limiter: self.clone(),
            ip,
        })
    }

    pub fn active(&self) -> usize {
        self.inner.state.lock().unwrap().total
    }
}

pub struct ConnPermit {
    limiter: ConnLimiter,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut st = self.limiter.inner.state.lock().unwrap();
        st.total -= 1;
        if let Some(n) = st.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total() {
        let l = ConnLimiter::new(2, 3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = l.try_acquire(a).unwrap();
        let _p2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).err(), Some(Refused::TooManyFromAddress));
        let _p3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(b).err(), Some(Refused::TooManyTotal));
        drop(p1);
        assert!(l.try_acquire(a).is_ok());
    }
}
