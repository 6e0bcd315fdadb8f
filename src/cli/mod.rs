//! One module per `callkit-voip <noun>`.

pub mod directory;
