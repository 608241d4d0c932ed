package http

import (
	"context"
	"encoding/json"
	"github.com/wharfml/wharf/atomicfile"

	"github.com/google/uuid"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// OwnerPrincipalName is the display name of the principal created on first
// start.
const OwnerPrincipalName = "wharf-owner"

// SDKAuth is the credential JSON `az ad sp create-for-rbac --sdk-auth`
// prints, the shape CI secrets such as AZURE_CREDENTIALS already hold, plus
// the Wharf server's URL.
type SDKAuth struct {
	ClientID                       string `json:"clientId"`
	ClientSecret                   string `json:"clientSecret"`
	SubscriptionID                 string `json:"subscriptionId"`
	TenantID                       string `json:"tenantId"`
	ActiveDirectoryEndpointURL     string `json:"activeDirectoryEndpointUrl"`
	ResourceManagerEndpointURL     string `json:"resourceManagerEndpointUrl"`
	ActiveDirectoryGraphResourceID string `json:"activeDirectoryGraphResourceId"`
	SQLManagementEndpointURL       string `json:"sqlManagementEndpointUrl"`
	GalleryEndpointURL             string `json:"galleryEndpointUrl"`
	ManagementEndpointURL          string `json:"managementEndpointUrl"`
	ServerURL                      string `json:"serverUrl"`
}

// NewSDKAuth fills every endpoint field with the server URL.
func NewSDKAuth(c *CredentialResponse) SDKAuth {
	return SDKAuth{
		ClientID: c.AppID, ClientSecret: c.Password, SubscriptionID: c.Tenant, TenantID: c.Tenant,
		ActiveDirectoryEndpointURL: c.ServerURL, ResourceManagerEndpointURL: c.ServerURL,
		ActiveDirectoryGraphResourceID: c.ServerURL, SQLManagementEndpointURL: c.ServerURL,
		GalleryEndpointURL: c.ServerURL, ManagementEndpointURL: c.ServerURL, ServerURL: c.ServerURL,
	}
}

// Bootstrap creates the first Owner when the server has no principal at all,
// and writes its credential to path (mode 0600). It returns whether it did.
// A server that already has principals is left alone: the file is written
// once, and the secret exists nowhere else. Of several servers starting at
// once on an empty database exactly one creates the Owner (and writes its
// file); the others find it there and go on.
func (s *Server) Bootstrap(ctx context.Context, path string) (bool, error) {
	list, err := s.Store.ListServicePrincipals(ctx)
	if err != nil || len(list) > 0 {
		return false, err
	}
	sp := &wharf.ServicePrincipal{AppID: uuid.NewString(), ObjectID: uuid.NewString(), DisplayName: OwnerPrincipalName}
	cred, resp, err := s.newCredential(sp, 2)
	if err != nil {
		return false, err
	}
	b, err := json.MarshalIndent(NewSDKAuth(resp), "", "  ")
	if err != nil {
		return false, err
	}
	created, err := s.Store.CreateFirstOwner(ctx, sp, cred)
	if err != nil || !created {
		return false, err
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return false, err
	}
	return true, nil
}

// OwnerUserName is the user principal name of the user created on first
// start, so a person can sign in to the web studio at once.
const OwnerUserName = "owner@wharf"

// OwnerUserFile is what BootstrapOwnerUser writes: how to sign in first.
type OwnerUserFile struct {
	UserPrincipalName string `json:"userPrincipalName"`
	Password          string `json:"password"`
	SignInURL         string `json:"signInUrl"`
	Note              string `json:"note"`
}

// BootstrapOwnerUser creates the user OwnerUserName with Owner at "/" and
// a random password that must be changed at the first sign-in, and writes
// the sign-in details to path (mode 0600). It does nothing when any user
// exists. The password exists nowhere else, and stops working once changed.
func (s *Server) BootstrapOwnerUser(ctx context.Context, path string) (bool, error) {
	list, err := s.Store.ListUsers(ctx)
	if err != nil || len(list) > 0 {
		return false, err
	}
	password, err := auth.GenerateSecret()
	if err != nil {
		return false, err
	}
	hash, err := hashPassword(password, OwnerUserName)
	if err != nil {
		return false, err
	}
	u := &wharf.User{ObjectID: uuid.NewString(), UserPrincipalName: OwnerUserName, DisplayName: "Wharf owner",
		PasswordHash: hash, ForceChangePassword: true}
	if err := s.Store.CreateUser(ctx, u); err != nil {
		return false, err
	}
	if err := s.Store.CreateRoleAssignment(ctx, &wharf.RoleAssignment{PrincipalID: u.ObjectID, RoleName: wharf.RoleOwner, Scope: wharf.ServerScope}); err != nil {
		return false, err
	}
	b, err := json.MarshalIndent(OwnerUserFile{UserPrincipalName: OwnerUserName, Password: password, SignInURL: s.URL + "/signin",
		Note: "a new password is chosen at the first sign-in; this one then stops working"}, "", "  ")
	if err != nil {
		return false, err
	}
	return true, atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}
