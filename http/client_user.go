package http

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/auth"
)

// UserTokens are what a user's sign-in gives the CLI: an access token and
// the refresh token that buys the next one.
type UserTokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresOn    time.Time
}

func userTokenRequest(ctx context.Context, baseURL, tenant string, form url.Values) (*UserTokens, error) {
	form.Set("client_id", auth.CLIClientID)
	var tr tokenResponse
	if err := postOAuthForm(ctx, baseURL, tenant, "token", form, &tr); err != nil {
		return nil, err
	}
	return &UserTokens{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken,
		ExpiresOn: time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)}, nil
}

// RequestUserTokenWithPassword runs the resource-owner password grant.
func RequestUserTokenWithPassword(ctx context.Context, baseURL, tenant, username, password string) (*UserTokens, error) {
	return userTokenRequest(ctx, baseURL, tenant, url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}})
}

// RefreshUserToken trades a refresh token for new tokens.
func RefreshUserToken(ctx context.Context, baseURL, tenant, refreshToken string) (*UserTokens, error) {
	return userTokenRequest(ctx, baseURL, tenant, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// StartDeviceCode begins a device-code sign-in (RFC 8628).
func StartDeviceCode(ctx context.Context, baseURL, tenant string) (*DeviceCodeResponse, error) {
	var dc DeviceCodeResponse
	err := postOAuthForm(ctx, baseURL, tenant, "devicecode", url.Values{"client_id": {auth.CLIClientID}}, &dc)
	return &dc, err
}

// PollDeviceCode polls the token endpoint until the person approves or
// denies the code, or it expires. It waits interval between polls and
// lengthens the wait by five seconds on each slow_down, as RFC 8628 asks;
// wait does the waiting (time passing, or a test's clock).
func PollDeviceCode(ctx context.Context, baseURL, tenant string, dc *DeviceCodeResponse, wait func(context.Context, time.Duration) error) (*UserTokens, error) {
	interval := time.Duration(dc.Interval) * time.Second
	if interval <= 0 {
		interval = DeviceCodeInterval
	}
	for {
		if err := wait(ctx, interval); err != nil {
			return nil, err
		}
		toks, err := userTokenRequest(ctx, baseURL, tenant, url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {dc.DeviceCode}})
		if err == nil {
			return toks, nil
		}
		msg := wharf.ErrorMessage(err)
		switch {
		case strings.HasPrefix(msg, "authorization_pending:"):
		case strings.HasPrefix(msg, "slow_down:"):
			interval += deviceSlowDownStep
		default:
			return nil, err
		}
	}
}
