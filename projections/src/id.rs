//! [`Id`]: an identifier held in the persistent maps of [`crate::LedgerState`].

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// An identifier (application id, command id, USCC) as a key or value of the persistent maps.
///
/// Cloning one is a reference-count increment. That matters because a persistent map copies
/// a node on the first write after it was shared (with the published snapshot, with the
/// state a batch started from), and copying a node clones every key in it: with `String`
/// keys, each write paid dozens of allocations.
///
/// It compares, orders and hashes as its text, and borrows as `str` and as `String`, so maps
/// keyed by it are looked up with either (`map.get("A-1")`, `map.get(&application_id)`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(Arc<String>);

impl Id {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Id {
    type Target = String;

    fn deref(&self) -> &String {
        &self.0
    }
}

impl Borrow<str> for Id {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<String> for Id {
    fn borrow(&self) -> &String {
        &self.0
    }
}

impl From<&str> for Id {
    fn from(text: &str) -> Id {
        Id(Arc::new(text.to_string()))
    }
}

impl From<String> for Id {
    fn from(text: String) -> Id {
        Id(Arc::new(text))
    }
}

impl From<&String> for Id {
    fn from(text: &String) -> Id {
        Id::from(text.as_str())
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        Arc::try_unwrap(id.0).unwrap_or_else(|shared| shared.as_ref().clone())
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Id {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};

    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn an_id_hashes_compares_and_looks_up_as_its_text() {
        let id = Id::from("A-2025-0001");
        // Borrow requires the hash of the borrowed form to be the hash of the key.
        assert_eq!(hash_of(&id), hash_of("A-2025-0001"));
        assert_eq!(hash_of(&id), hash_of(&"A-2025-0001".to_string()));
        let (first, second) = (Id::from("A-1"), Id::from("A-2"));
        assert!(first < second);
        assert_eq!(id, "A-2025-0001");
        let mut map: imbl::HashMap<Id, u32> = imbl::HashMap::new();
        map.insert(id.clone(), 7);
        assert_eq!(map.get("A-2025-0001"), Some(&7));
        assert_eq!(map.get(&"A-2025-0001".to_string()), Some(&7));
        assert_eq!(map.get("A-2025-0002"), None);
        let ordered: imbl::OrdMap<Id, u32> = [(Id::from("b"), 2u32), (Id::from("a"), 1u32)]
            .into_iter()
            .collect();
        assert_eq!(ordered.get("a"), Some(&1));
        assert_eq!(format!("{id} {id:?}"), "A-2025-0001 \"A-2025-0001\"");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"A-2025-0001\"");
        assert_eq!(String::from(id), "A-2025-0001");
    }
}
