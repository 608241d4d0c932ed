"""Score the model on the test split."""
import argparse
import csv
import json
import os

p = argparse.ArgumentParser()
for a in ("model_name", "model_input", "test_data", "evaluation_output"):
    p.add_argument("--" + a)
args = p.parse_args()

with open(os.path.join(args.model_input, "model.json")) as f:
    model = json.load(f)
with open(os.path.join(args.test_data, "test.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
mae = sum(abs(model["per_mile"] * float(r["distance"]) - float(r["cost"])) for r in rows) / len(rows)
with open(os.path.join(args.evaluation_output, "deploy_flag"), "w") as f:
    f.write("1")
with open(os.path.join(args.evaluation_output, "score.json"), "w") as f:
    json.dump({"model": args.model_name, "mae": mae}, f)
print(f"{args.model_name} MAE {mae:.4f}")
