package main

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/wharfml/wharf"
	wharfhttp "github.com/wharfml/wharf/http"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/resolve"
)

// apiResolver answers jobspec's questions about registered assets from
// the server, remembering what it fetched: a job submission needs the
// assets' content (digests, environment specs) right after validation.
type apiResolver struct {
	ctx    context.Context
	client *wharfhttp.Client
	ws     string
	assets map[string]*wharf.Asset
}

func newAPIResolver(ctx context.Context, c *wharfhttp.Client, ws string) *apiResolver {
	return &apiResolver{ctx: ctx, client: c, ws: ws, assets: map[string]*wharf.Asset{}}
}

// fetch returns an asset version; found is false when it does not exist.
// An environment in Azure's curated registry is asked of the workspace,
// which answers with a stand-in registered under its name or with the
// server's catalog of Azure's definitions.
func (r *apiResolver) fetch(kind string, ref jobspec.AssetRef) (*wharf.Asset, bool, error) {
	if ref.Form == jobspec.RefRegistry {
		local, ok := ref.AsWorkspaceRef()
		if kind != wharf.AssetEnvironment || !ok {
			return nil, false, nil
		}
		ref = local
	}
	version := ref.Version
	if version == "" {
		version = wharf.LatestVersion
	}
	key := kind + "/" + ref.Name + "/" + version
	if a, ok := r.assets[key]; ok {
		return a, true, nil
	}
	var a wharf.Asset
	err := r.client.Do(r.ctx, "GET", assetsPath(r.ws, kind)+"/"+url.PathEscape(ref.Name)+"/versions/"+url.PathEscape(version), nil, &a)
	if wharf.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r.assets[key] = &a
	return &a, true, nil
}

// Component implements jobspec.Resolver.
func (r *apiResolver) Component(ref jobspec.AssetRef) (*jobspec.ComponentSpec, bool, error) {
	a, found, err := r.fetch(wharf.AssetComponent, ref)
	if err != nil || !found {
		return nil, found, err
	}
	var stored componentSpecJSON
	if err := json.Unmarshal(a.Spec, &stored); err != nil {
		return nil, false, wharf.Errorf(wharf.EINTERNAL, "component %s:%s is stored in a form this client cannot read: %s", a.Name, a.Version, err)
	}
	return stored.Component, true, nil
}

// AssetExists implements jobspec.Resolver.
func (r *apiResolver) AssetExists(kind jobspec.AssetKind, ref jobspec.AssetRef) (bool, error) {
	var k string
	switch kind {
	case jobspec.AssetData:
		k = wharf.AssetData
	case jobspec.AssetEnvironment:
		k = wharf.AssetEnvironment
	case jobspec.AssetComponent:
		k = wharf.AssetComponent
	case jobspec.AssetModel:
		if ref.Form == jobspec.RefRegistry {
			return false, nil
		}
		var v any
		version := ref.Version
		if version == "" {
			version = wharf.LatestVersion
		}
		err := r.client.Do(r.ctx, "GET", modelsPath(r.ws)+"/"+url.PathEscape(ref.Name)+"/versions/"+url.PathEscape(version), nil, &v)
		if wharf.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	default:
		return false, nil
	}
	_, found, err := r.fetch(k, ref)
	return found, err
}

// componentSpecJSON is a component's stored definition.
type componentSpecJSON = resolve.Component
