"""Write what would be registered, if the evaluation says to deploy."""
import argparse
import json
import os

p = argparse.ArgumentParser()
for a in ("model_name", "model_path", "evaluation_output", "model_info_output_path"):
    p.add_argument("--" + a)
args = p.parse_args()

with open(os.path.join(args.evaluation_output, "deploy_flag")) as f:
    deploy = f.read().strip() == "1"
info = {"model_name": args.model_name, "deploy": deploy, "run_id": os.environ.get("MLFLOW_RUN_ID", "")}
with open(os.path.join(args.model_info_output_path, "model_info.json"), "w") as f:
    json.dump(info, f)
print(json.dumps(info))
