"""Register the trained model when the evaluate step promoted it.

Reads deploy_flag from the evaluation output. With 1, the model folder is
logged to this step's MLflow run, exactly as the train step saved it, and
registered from there as the next version of --model_name, so the version
leads back to the pipeline run that made it. With 0 nothing is registered.
Either way model_info.json says what happened.
"""
import argparse
import json
import os

import mlflow


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model_name", required=True, help="registered model name")
    p.add_argument("--model_path", required=True, help="folder of the trained MLflow model")
    p.add_argument("--evaluation_output", required=True, help="the evaluate step's output folder")
    p.add_argument("--model_info_output_path", required=True, help="output folder for model_info.json")
    return p.parse_args()


def main():
    args = parse_args()
    with open(os.path.join(args.evaluation_output, "deploy_flag")) as f:
        deploy_flag = int(f.read().strip())
    info = {"model_name": args.model_name, "deploy_flag": deploy_flag, "registered": False}
    with mlflow.start_run() as run:
        mlflow.log_metric("deploy_flag", deploy_flag)
        if deploy_flag == 1:
            mlflow.log_artifacts(args.model_path, artifact_path=args.model_name)
            mv = mlflow.register_model(f"runs:/{run.info.run_id}/{args.model_name}", args.model_name)
            info.update(registered=True, id=f"{mv.name}:{mv.version}", version=int(mv.version), run_id=run.info.run_id)
            print(f"registered {mv.name} version {mv.version}")
        else:
            print(f"deploy_flag is 0: {args.model_name} is not registered")
    os.makedirs(args.model_info_output_path, exist_ok=True)
    with open(os.path.join(args.model_info_output_path, "model_info.json"), "w") as f:
        json.dump(info, f, indent=2)


if __name__ == "__main__":
    main()
