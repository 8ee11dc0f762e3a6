//! fundledger-audit (being written).
