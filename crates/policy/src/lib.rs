//! fundledger-policy (being written).
