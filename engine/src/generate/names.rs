//! Account names: every combination of a head, a tail, a trade and a suffix, visited in an
//! order that gives neighbouring accounts unrelated names.

// "Blue" + "peak" + " " + "Logistics" + " " + "Inc". No head is "Acme", so "Acme Corp" is unique.
pub(super) const NAME_HEADS: [&str; 32] = [
    "North", "Blue", "Silver", "Iron", "Bright", "Red", "Green", "Stone", "Sun", "Star", "Oak", "Pine", "Cedar",
    "Maple", "River", "Lake", "High", "Clear", "Swift", "Gold", "Summit", "Harbor", "Cloud", "Frost", "Wild", "East",
    "West", "South", "Crystal", "Eagle", "Falcon", "Copper",
];
pub(super) const NAME_TAILS: [&str; 32] = [
    "wind", "peak", "line", "wood", "water", "field", "gate", "bridge", "brook", "crest", "ridge", "view", "point",
    "haven", "vale", "ford", "mark", "well", "spring", "light", "path", "shore", "port", "forge", "works", "wave",
    "hill", "dale", "bay", "rock", "leaf", "side",
];
pub(super) const NAME_TRADES: [&str; 48] = [
    "Logistics",
    "Analytics",
    "Foods",
    "Health",
    "Software",
    "Energy",
    "Capital",
    "Robotics",
    "Media",
    "Networks",
    "Pharma",
    "Retail",
    "Motors",
    "Textiles",
    "Systems",
    "Dynamics",
    "Solutions",
    "Technologies",
    "Consulting",
    "Insurance",
    "Payments",
    "Learning",
    "Security",
    "Biotech",
    "Freight",
    "Devices",
    "Materials",
    "Aerospace",
    "Telecom",
    "Apparel",
    "Brewing",
    "Medical",
    "Finance",
    "Marine",
    "Mining",
    "Chemicals",
    "Interactive",
    "Digital",
    "Data",
    "Hosting",
    "Instruments",
    "Electronics",
    "Outfitters",
    "Studios",
    "Supply",
    "Components",
    "Farms",
    "Publishing",
];
pub(super) const NAME_SUFFIXES: [&str; 16] = [
    "", "Inc", "Ltd", "Group", "Corp", "LLC", "GmbH", "Holdings", "Partners", "Co", "AG", "PLC", "SA", "BV", "Pty Ltd",
    "Labs",
];
pub(super) const NAME_COUNT: u64 =
    (NAME_HEADS.len() * NAME_TAILS.len() * NAME_TRADES.len() * NAME_SUFFIXES.len()) as u64;
/// Coprime with `NAME_COUNT` (= 2^18 · 3), so stepping by it visits every name once and
/// neighbouring accounts get unrelated names.
pub(super) const NAME_STRIDE: u64 = 104_729;
pub(super) const DEALS_PER_ACCOUNT: usize = 3;
