package mlflow

import (
	"math"
	"sort"
	"strconv"

	"github.com/wharfml/wharf"
)

// The JSON shapes of MLflow's entities, field for field as MLflow's server
// writes them: snake_case names, int64 as JSON numbers, empty optional
// fields left out rather than sent as null.

type mlflowKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// kvList turns a map into MLflow's [{key, value}] list, sorted by key so
// responses are stable; nil when empty, so the field is left out.
func kvList(m map[string]string) []mlflowKV {
	if len(m) == 0 {
		return nil
	}
	out := make([]mlflowKV, 0, len(m))
	for k, v := range m {
		out = append(out, mlflowKV{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// mlflowDouble writes NaN and the infinities as protobuf's JSON form does,
// as the strings "NaN", "Infinity" and "-Infinity", which JSON numbers
// cannot express and the client parses back.
type mlflowDouble float64

// MarshalJSON implements json.Marshaler.
func (d mlflowDouble) MarshalJSON() ([]byte, error) {
	f := float64(d)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

type mlflowExperiment struct {
	ExperimentID     string     `json:"experiment_id"`
	Name             string     `json:"name"`
	ArtifactLocation string     `json:"artifact_location,omitempty"`
	LifecycleStage   string     `json:"lifecycle_stage,omitempty"`
	LastUpdateTime   int64      `json:"last_update_time,omitempty"`
	CreationTime     int64      `json:"creation_time,omitempty"`
	Tags             []mlflowKV `json:"tags,omitempty"`
}

func experimentJSON(e *wharf.Experiment) *mlflowExperiment {
	return &mlflowExperiment{
		ExperimentID:     e.ID,
		Name:             e.Name,
		ArtifactLocation: e.ArtifactLocation,
		LifecycleStage:   e.LifecycleStage,
		LastUpdateTime:   e.LastUpdateTime,
		CreationTime:     e.CreationTime,
		Tags:             kvList(e.Tags),
	}
}

type mlflowRunInfo struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid"`
	RunName        string `json:"run_name,omitempty"`
	ExperimentID   string `json:"experiment_id"`
	UserID         string `json:"user_id,omitempty"`
	Status         string `json:"status,omitempty"`
	StartTime      int64  `json:"start_time,omitempty"`
	EndTime        int64  `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri,omitempty"`
	LifecycleStage string `json:"lifecycle_stage,omitempty"`
}

type mlflowMetric struct {
	Key           string       `json:"key"`
	Value         mlflowDouble `json:"value"`
	Timestamp     int64        `json:"timestamp"`
	Step          int64        `json:"step"`
	DatasetName   string       `json:"dataset_name,omitempty"`
	DatasetDigest string       `json:"dataset_digest,omitempty"`
	ModelID       string       `json:"model_id,omitempty"`
	RunID         string       `json:"run_id,omitempty"`
}

type mlflowRunData struct {
	Metrics []mlflowMetric `json:"metrics,omitempty"`
	Params  []mlflowKV     `json:"params,omitempty"`
	Tags    []mlflowKV     `json:"tags,omitempty"`
}

type mlflowDataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

type mlflowDatasetInput struct {
	Tags    []mlflowKV    `json:"tags,omitempty"`
	Dataset mlflowDataset `json:"dataset"`
}

type mlflowModelInput struct {
	ModelID string `json:"model_id"`
}

type mlflowRunInputs struct {
	DatasetInputs []mlflowDatasetInput `json:"dataset_inputs,omitempty"`
	ModelInputs   []mlflowModelInput   `json:"model_inputs,omitempty"`
}

type mlflowModelOutput struct {
	ModelID string `json:"model_id"`
	Step    int64  `json:"step"`
}

type mlflowRunOutputs struct {
	ModelOutputs []mlflowModelOutput `json:"model_outputs,omitempty"`
}

type mlflowRun struct {
	Info    mlflowRunInfo     `json:"info"`
	Data    mlflowRunData     `json:"data"`
	Inputs  mlflowRunInputs   `json:"inputs"`
	Outputs *mlflowRunOutputs `json:"outputs,omitempty"`
}

func runInfoJSON(r *wharf.Run) mlflowRunInfo {
	return mlflowRunInfo{
		RunID:          r.ID,
		RunUUID:        r.ID,
		RunName:        r.Name,
		ExperimentID:   r.ExperimentID,
		UserID:         r.UserID,
		Status:         r.Status,
		StartTime:      r.StartTime,
		EndTime:        r.EndTime,
		ArtifactURI:    r.ArtifactURI,
		LifecycleStage: r.LifecycleStage,
	}
}

func metricJSON(m *wharf.Metric) mlflowMetric {
	return mlflowMetric{
		Key:           m.Key,
		Value:         mlflowDouble(m.Value),
		Timestamp:     m.Timestamp,
		Step:          m.Step,
		DatasetName:   m.DatasetName,
		DatasetDigest: m.DatasetDigest,
		ModelID:       m.ModelID,
		RunID:         m.RunID,
	}
}

func metricsJSON(ms []*wharf.Metric) []mlflowMetric {
	if len(ms) == 0 {
		return nil
	}
	out := make([]mlflowMetric, len(ms))
	for i, m := range ms {
		out[i] = metricJSON(m)
	}
	return out
}

func runJSON(r *wharf.Run) *mlflowRun {
	out := &mlflowRun{
		Info: runInfoJSON(r),
		Data: mlflowRunData{
			Metrics: metricsJSON(r.Metrics),
			Params:  kvList(r.Params),
			Tags:    kvList(r.Tags),
		},
	}
	for _, in := range r.Inputs {
		d := in.Dataset
		out.Inputs.DatasetInputs = append(out.Inputs.DatasetInputs, mlflowDatasetInput{
			Tags: kvList(in.Tags),
			Dataset: mlflowDataset{
				Name: d.Name, Digest: d.Digest, SourceType: d.SourceType,
				Source: d.Source, Schema: d.Schema, Profile: d.Profile,
			},
		})
	}
	for _, in := range r.ModelInputs {
		out.Inputs.ModelInputs = append(out.Inputs.ModelInputs, mlflowModelInput{ModelID: in.ModelID})
	}
	if len(r.ModelOutputs) > 0 {
		out.Outputs = &mlflowRunOutputs{}
		for _, o := range r.ModelOutputs {
			out.Outputs.ModelOutputs = append(out.Outputs.ModelOutputs, mlflowModelOutput{ModelID: o.ModelID, Step: o.Step})
		}
	}
	return out
}

type mlflowAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

type mlflowRegisteredModel struct {
	Name                 string               `json:"name"`
	CreationTimestamp    int64                `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp int64                `json:"last_updated_timestamp,omitempty"`
	UserID               string               `json:"user_id,omitempty"`
	Description          string               `json:"description,omitempty"`
	LatestVersions       []mlflowModelVersion `json:"latest_versions,omitempty"`
	Tags                 []mlflowKV           `json:"tags,omitempty"`
	Aliases              []mlflowAlias        `json:"aliases,omitempty"`
}

// mlflowModelVersion carries the version number as a string, as MLflow's
// protocol does.
type mlflowModelVersion struct {
	Name                 string `json:"name"`
	Version              string `json:"version"`
	CreationTimestamp    int64  `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp int64  `json:"last_updated_timestamp,omitempty"`
	UserID               string `json:"user_id,omitempty"`
	CurrentStage         string `json:"current_stage,omitempty"`
	// Description, RunID and RunLink are "" when unset, as MLflow's
	// server sends them.
	Description   string     `json:"description"`
	Source        string     `json:"source,omitempty"`
	RunID         string     `json:"run_id"`
	Status        string     `json:"status,omitempty"`
	StatusMessage string     `json:"status_message,omitempty"`
	Tags          []mlflowKV `json:"tags,omitempty"`
	RunLink       string     `json:"run_link"`
	Aliases       []string   `json:"aliases,omitempty"`
	ModelID       string     `json:"model_id,omitempty"`
}

func modelVersionJSON(v *wharf.ModelVersion) mlflowModelVersion {
	var aliases []string
	if len(v.Aliases) > 0 {
		aliases = sortedStrings(append([]string(nil), v.Aliases...))
	}
	return mlflowModelVersion{
		Name:                 v.Name,
		Version:              strconv.FormatInt(v.Version, 10),
		CreationTimestamp:    v.CreationTime,
		LastUpdatedTimestamp: v.LastUpdatedTime,
		UserID:               v.UserID,
		CurrentStage:         v.CurrentStage,
		Description:          v.Description,
		Source:               v.Source,
		RunID:                v.RunID,
		Status:               v.Status,
		StatusMessage:        v.StatusMessage,
		Tags:                 kvList(v.Tags),
		RunLink:              v.RunLink,
		Aliases:              aliases,
		ModelID:              v.ModelID,
	}
}

func modelVersionsJSON(vs []*wharf.ModelVersion) []mlflowModelVersion {
	if len(vs) == 0 {
		return nil
	}
	out := make([]mlflowModelVersion, len(vs))
	for i, v := range vs {
		out[i] = modelVersionJSON(v)
	}
	return out
}

func registeredModelJSON(m *wharf.RegisteredModel) *mlflowRegisteredModel {
	out := &mlflowRegisteredModel{
		Name:                 m.Name,
		CreationTimestamp:    m.CreationTime,
		LastUpdatedTimestamp: m.LastUpdatedTime,
		UserID:               m.UserID,
		Description:          m.Description,
		LatestVersions:       modelVersionsJSON(m.LatestVersions),
		Tags:                 kvList(m.Tags),
	}
	for alias, v := range m.Aliases {
		out.Aliases = append(out.Aliases, mlflowAlias{Alias: alias, Version: strconv.FormatInt(v, 10)})
	}
	sort.Slice(out.Aliases, func(i, j int) bool { return out.Aliases[i].Alias < out.Aliases[j].Alias })
	return out
}

type mlflowLoggedModelInfo struct {
	ModelID                string     `json:"model_id"`
	ExperimentID           string     `json:"experiment_id"`
	Name                   string     `json:"name,omitempty"`
	CreationTimestampMs    int64      `json:"creation_timestamp_ms,omitempty"`
	LastUpdatedTimestampMs int64      `json:"last_updated_timestamp_ms,omitempty"`
	ArtifactURI            string     `json:"artifact_uri,omitempty"`
	Status                 string     `json:"status,omitempty"`
	CreatorID              *int64     `json:"creator_id,omitempty"`
	ModelType              string     `json:"model_type,omitempty"`
	SourceRunID            string     `json:"source_run_id,omitempty"`
	StatusMessage          string     `json:"status_message,omitempty"`
	Tags                   []mlflowKV `json:"tags,omitempty"`
}

type mlflowLoggedModelData struct {
	Params  []mlflowKV     `json:"params,omitempty"`
	Metrics []mlflowMetric `json:"metrics,omitempty"`
}

type mlflowLoggedModel struct {
	Info mlflowLoggedModelInfo `json:"info"`
	Data mlflowLoggedModelData `json:"data"`
}

func loggedModelJSON(m *wharf.LoggedModel) *mlflowLoggedModel {
	out := &mlflowLoggedModel{
		Info: mlflowLoggedModelInfo{
			ModelID:                m.ID,
			ExperimentID:           m.ExperimentID,
			Name:                   m.Name,
			CreationTimestampMs:    m.CreationTime,
			LastUpdatedTimestampMs: m.LastUpdatedTime,
			ArtifactURI:            m.ArtifactURI,
			Status:                 m.Status,
			ModelType:              m.ModelType,
			SourceRunID:            m.SourceRunID,
			StatusMessage:          m.StatusMessage,
			Tags:                   kvList(m.Tags),
		},
		Data: mlflowLoggedModelData{Params: kvList(m.Params), Metrics: metricsJSON(m.Metrics)},
	}
	// MLflow's creator_id is an int64; a Wharf principal id is not a number,
	// and sending it would make the client fail to parse the whole model.
	if n, err := strconv.ParseInt(m.CreatorID, 10, 64); err == nil {
		out.Info.CreatorID = &n
	}
	return out
}

// mlflowFileInfo is one entry of an artifact listing. file_size is present
// for files only.
type mlflowFileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize *int64 `json:"file_size,omitempty"`
}
