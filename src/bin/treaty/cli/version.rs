//! `treaty --version`: the package version, the commit it was built from and its features, so a
//! report names exactly which build judged (the build script records both).

/// `treaty -V`.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TREATY_BUILD_COMMIT"),
    ")"
);

/// `treaty --version`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("TREATY_BUILD_COMMIT"),
    "\nfeatures: ",
    env!("TREATY_BUILD_FEATURES")
);
