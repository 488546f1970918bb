/**
 * App Service Authentication as infra/ deploys it is what the sandbox's front end applies (dev/auth/frontEnd.ts,
 * `deployedAuthSettings`), and what the app's start-up check accepts; the app identity may read those settings of
 * its own app and nothing else. So the browser and integration tests in easyauth mode prove the deployed setup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deployedAuthSettings } from '../../dev/auth/frontEnd';
import { AUTH_SETTINGS_ARM_ACTIONS } from '../../shared/adapters/armAuthSettings';
import { checkPlatformAuth } from '../../shared/domain/platformAuth';
import { loadBicep, objectProperties, propertyAt, stringArray, stringValue } from './bicepModel';
import type { BicepFile } from './bicepModel';

const load = (file: string) => loadBicep(file);

function authSettingsOf(file: BicepFile) {
  const r = file.resources.find(
    (x) =>
      x.type.startsWith('Microsoft.Web/sites/config@') &&
      stringValue(objectProperties(x.body).get('name')) === 'authsettingsV2',
  );
  assert.ok(r, 'function-app.bicep declares config/authsettingsV2');
  return propertyAt(r.body, 'properties');
}

test('the deployed App Service Authentication is the one the sandbox front end applies', async () => {
  const file = await load('infra/modules/function-app.bicep');
  const props = authSettingsOf(file);
  const expected = deployedAuthSettings('client', 'issuer');
  const text = (dotted: string) => propertyAt(props, dotted)?.text;
  const str = (dotted: string) => stringValue(propertyAt(props, dotted));
  assert.equal(text('platform.enabled'), String(expected.platform.enabled));
  assert.equal(
    text('globalValidation.requireAuthentication'),
    String(expected.globalValidation.requireAuthentication),
  );
  assert.equal(
    str('globalValidation.unauthenticatedClientAction'),
    expected.globalValidation.unauthenticatedClientAction,
  );
  assert.equal(str('globalValidation.redirectToProvider'), expected.globalValidation.redirectToProvider);
  assert.deepEqual(
    stringArray(file, propertyAt(props, 'globalValidation.excludedPaths')),
    expected.globalValidation.excludedPaths,
  );
  assert.equal(text('identityProviders.azureActiveDirectory.enabled'), 'true');
  assert.equal(
    text('identityProviders.azureActiveDirectory.login.disableWWWAuthenticate'),
    String(expected.identityProviders.azureActiveDirectory.login.disableWWWAuthenticate),
  );
  assert.equal(text('login.tokenStore.enabled'), String(expected.login.tokenStore.enabled));
  // A tenant-specific v2.0 issuer, as the start-up check requires.
  assert.match(
    text('identityProviders.azureActiveDirectory.registration.openIdIssuer') ?? '',
    /tenant\(\)\.tenantId\}\/v2\.0'$/,
  );
  const audiences = propertyAt(props, 'identityProviders.azureActiveDirectory.validation.allowedAudiences');
  assert.deepEqual(
    audiences?.namedChildren.filter((c) => c.type !== 'comment').map((c) => c.text),
    ['authClientId', "'api://${authClientId}'"],
  );
  // And the app's start-up check accepts exactly this.
  const verdict = checkPlatformAuth(
    deployedAuthSettings(
      'client',
      'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
    ),
  );
  assert.deepEqual(verdict, { tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47' });
});

test('the app reads the settings of itself: JIT_APP_RESOURCE_ID is the site, and its identity may read only its config', async () => {
  const app = await load('infra/modules/function-app.bicep');
  const settings = app.resources.find(
    (x) =>
      x.type.startsWith('Microsoft.Web/sites/config@') &&
      stringValue(objectProperties(x.body).get('name')) === 'appsettings',
  );
  assert.equal(propertyAt(settings?.body, 'properties.JIT_APP_RESOURCE_ID')?.text, 'site.id');
  assert.equal(stringValue(propertyAt(settings?.body, 'properties.JIT_AUTH_MODE')), 'easyauth');

  const roles = await load('infra/modules/role-assignments.bicep');
  assert.deepEqual(stringArray(roles, roles.vars.get('authSettingsReaderActions')), [
    ...AUTH_SETTINGS_ARM_ACTIONS,
  ]);
  const assignment = roles.resources.find((r) => r.symbol === 'authSettingsReader');
  assert.equal(objectProperties(assignment?.body).get('scope')?.text, 'functionApp');
  const site = roles.resources.find((r) => r.symbol === 'functionApp');
  assert.ok(site?.existing && site.type.startsWith('Microsoft.Web/sites@'));
});
