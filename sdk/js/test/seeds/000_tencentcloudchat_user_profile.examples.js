// The code examples of 000_tencentcloudchat_user_profile.txt (Tencent Cloud Chat Web SDK, "User
// Profile": getMyProfile, getUserProfile, updateMyProfile; trtc.io/document/48161), one per
// "// @example" block. The document's text lost its line breaks, so each example sits on one line
// there and its `//` comments swallow the code after them; here the line breaks are put back and
// NOTHING else changed: test/seeds.test.mjs checks that every block with its line breaks removed
// is exactly a line of the document.

// @example getMyProfile
let promise = chat.getMyProfile();
promise.then(function(imResponse) {
console.log(imResponse.data); // Personal profile - profile instance
}).catch(function(imError) {
console.warn('getMyProfile error:', imError); // Failed to obtain the user's profile
});

// @example getUserProfile
let promise = chat.getUserProfile({
// even if you retrieve the profile of only one user, the value must be of array type
// for example, userIDList: ['user1']
userIDList: ['user1', 'user2']
});
promise.then(function(imResponse) {
console.log(imResponse.data); // Array that stores other users' profiles - [Profile]
}).catch(function(imError) {
console.warn('getUserProfile error:', imError); // Failed to obtain the user's profile
});

// @example updateMyProfile (standard fields)
// Modify a user's profile
let promise = chat.updateMyProfile({nick: 'My nickname',avatar: 'http(s)://url/to/image.jpg',gender: TencentCloudChat.TYPES.GENDER_MALE,selfSignature: 'My status',allowType: TencentCloudChat.TYPES.ALLOW_TYPE_ALLOW_ANY});
promise.then(function(imResponse) {
console.log(imResponse.data); // Profile updated successfully
}).catch(function(imError) {
console.warn('updateMyProfile error:', imError); // Failed to update the profile
});

// @example updateMyProfile (custom field)
// Modify personal custom profile fields
// Custom profile fields must be configured in the Chat console in advance
// by clicking the desired app card and choosing Feature Configuration > User Custom Field
let promise = chat.updateMyProfile({profileCustomField: [{key: 'Tag_Profile_Custom_Test1',value: 'My custom profile 1'}]});
promise.then(function(imResponse) {
console.log(imResponse.data); // Profile updated successfully
}).catch(function(imError) {
console.warn('updateMyProfile error:', imError); // Failed to update the profile
});

// @example updateMyProfile (standard and custom fields)
// Modify personal standard and custom profile fields
// Custom profile fields must be configured in the Chat console in advance
// by clicking the desired app card and selecting Feature Configuration > User Custom Field.
let promise = chat.updateMyProfile({nick: 'My nickname',profileCustomField: [{key: 'Tag_Profile_Custom_Test1',value: 'My custom profile 1'},{key: 'Tag_Profile_Custom_Test2',value: 'My custom profile 2'},]});
promise.then(function(imResponse) {
console.log(imResponse.data); // Profile updated successfully
}).catch(function(imError) {
console.warn('updateMyProfile error:', imError); // Failed to update the profile
});
