"""Split raw taxi rows into train, validation and test sets."""
import argparse
import csv
import os

p = argparse.ArgumentParser()
for a in ("raw_data", "train_data", "val_data", "test_data", "enable_monitoring", "table_name"):
    p.add_argument("--" + a)
args = p.parse_args()

with open(args.raw_data, newline="") as f:
    rows = list(csv.DictReader(f))
splits = {"train": [], "val": [], "test": []}
for i, row in enumerate(rows):
    splits["train" if i % 10 < 7 else "val" if i % 10 < 9 else "test"].append(row)
for name, out in (("train", args.train_data), ("val", args.val_data), ("test", args.test_data)):
    with open(os.path.join(out, name + ".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(splits[name])
    print(f"{name}: {len(splits[name])} rows")
print(f"monitoring {args.enable_monitoring} table {args.table_name}")
