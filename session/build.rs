//! Stamps the build with the commit it was built from (`punktfunk --version`); "unknown"
//! outside a git checkout (a source tarball).

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    println!("cargo:rustc-env=PUNKTFUNK_COMMIT={commit}{}", if dirty { "+changes" } else { "" });
    println!("cargo:rustc-env=PUNKTFUNK_PROFILE={}", std::env::var("PROFILE").unwrap_or_default());
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs", "../.git/index"] {
        println!("cargo:rerun-if-changed={path}");
    }
}
