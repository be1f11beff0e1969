//! `nanograd-onnx MODEL.onnx --name MlpNet --out DIR`: writes `DIR/mlp_net.rs` (a `model!`
//! block) and `DIR/mlp_net.safetensors` (its weights), or reports every problem and exits
//! with status 1, writing nothing.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: nanograd-onnx MODEL.onnx --name StructName --out DIR";

struct Args {
    model: PathBuf,
    name: String,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let (mut model, mut name, mut out) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--name" => name = Some(it.next().ok_or("--name needs a value")?.clone()),
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out needs a value")?)),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s if model.is_none() => model = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    Ok(Args {
        model: model.ok_or("no MODEL.onnx given")?,
        name: name.ok_or("--name is required")?,
        out: out.ok_or("--out is required")?,
    })
}

fn run(args: &Args) -> Result<(PathBuf, PathBuf), String> {
    let bytes = std::fs::read(&args.model).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let converted = nanograd_onnx::convert(&bytes, &args.name)
        .map_err(|e| format!("{}: {e}", args.model.display()))?;
    let stem = nanograd_onnx::snake_case(&args.name);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let rs = args.out.join(format!("{stem}.rs"));
    let st = args.out.join(format!("{stem}.safetensors"));
    std::fs::write(&rs, &converted.source).map_err(|e| format!("{}: {e}", rs.display()))?;
    std::fs::write(&st, &converted.safetensors).map_err(|e| format!("{}: {e}", st.display()))?;
    Ok((rs, st))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    match run(&args) {
        Ok((rs, st)) => {
            println!("wrote {} and {}", rs.display(), st.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
