package jobspec

// Resolver looks up registered assets while a file is validated, so that
// unknown references fail before anything runs. The server implements it
// over its registry.
type Resolver interface {
	// Component returns the registered component ref names (ref.Version
	// set, or ref.Label "latest" for the most recently created version).
	// found is false when there is none; err is for lookup failures only.
	// The returned spec is not modified by callers.
	Component(ref AssetRef) (spec *ComponentSpec, found bool, err error)
	// AssetExists reports whether a registered asset of the kind exists
	// (AssetData, AssetEnvironment, AssetModel or AssetCode).
	AssetExists(kind AssetKind, ref AssetRef) (bool, error)
}

// MapResolver is an in-memory Resolver. It knows workspace assets only:
// registry references are never found. The zero value is empty and ready to
// use; it is not safe for concurrent modification.
type MapResolver struct {
	components map[string][]*ComponentSpec
	assets     map[AssetKind]map[string][]string
}

// AddComponent registers c under its name and version; the last one added
// for a name is its latest.
func (m *MapResolver) AddComponent(c *ComponentSpec) {
	if m.components == nil {
		m.components = map[string][]*ComponentSpec{}
	}
	m.components[c.Name] = append(m.components[c.Name], c)
}

// AddAsset registers an asset version; the last one added for a name is its
// latest.
func (m *MapResolver) AddAsset(kind AssetKind, name, version string) {
	if m.assets == nil {
		m.assets = map[AssetKind]map[string][]string{}
	}
	if m.assets[kind] == nil {
		m.assets[kind] = map[string][]string{}
	}
	m.assets[kind][name] = append(m.assets[kind][name], version)
}

// Component implements Resolver.
func (m *MapResolver) Component(ref AssetRef) (*ComponentSpec, bool, error) {
	if ref.Form == RefRegistry {
		return nil, false, nil
	}
	versions := m.components[ref.Name]
	if len(versions) == 0 {
		return nil, false, nil
	}
	if ref.IsLatest() {
		return versions[len(versions)-1], true, nil
	}
	for _, c := range versions {
		if ref.Version != "" && c.Version == ref.Version {
			return c, true, nil
		}
	}
	return nil, false, nil
}

// AssetExists implements Resolver.
func (m *MapResolver) AssetExists(kind AssetKind, ref AssetRef) (bool, error) {
	if ref.Form == RefRegistry {
		return false, nil
	}
	versions := m.assets[kind][ref.Name]
	if len(versions) == 0 {
		return false, nil
	}
	if ref.IsLatest() {
		return true, nil
	}
	for _, v := range versions {
		if ref.Version != "" && v == ref.Version {
			return true, nil
		}
	}
	return false, nil
}

// resolverOrEmpty treats a nil Resolver as one that knows no assets.
func resolverOrEmpty(r Resolver) Resolver {
	if r == nil {
		return &MapResolver{}
	}
	return r
}
