// Tells the C ABI test which target triple to compile its C harness for.
fn main() {
    println!("cargo:rustc-env=PUNKTFUNK_TARGET={}", std::env::var("TARGET").unwrap());
}
