//! Synthetic CRM data (being written).
