//! fundledger-store (being written).
