"""The paper's metrics: SSIM, PSNR (image.py), LMD (landmarks.py), LSE-D / LSE-C (sync.py),
plus pair checks and the Table 1 / 2 builder (report.py).

    from taem_jax import metrics
    metrics.check_pair(video.probe(gen_path), video.probe(gt_path))
    gt_track = face.track_faces(gt)                             # dlib, once per video
    gen_crops, gt_crops = metrics.face_crops(gen, gt, gt_track)
    s, p = metrics.ssim(gen_crops, gt_crops), metrics.psnr(gen_crops, gt_crops)
    d = metrics.mouth_detail_ratio(gen_crops, gt_crops)        # mouth sharpness vs the truth
    l = metrics.lmd_of_tracks(metrics.mouth_landmarks(gen), metrics.MouthTrack.of(gt_track)).lmd
    scorer = metrics.scorer_for(syncnet_v2_or_expert)           # reuse across clips
    sync = metrics.score_video(gen, wav, scorer)                # .lse_d, .lse_c, .model
    table = metrics.Table("GRID", note=f"LSE by {sync.model}")
"""
from taem_jax.metrics.image import (MOUTH_REGION, face_crops, mouth_colour_shift, mouth_detail,
                                    mouth_detail_ratio, mouth_strip, psnr, psnr_frames, ssim,
                                    ssim_frames)
from taem_jax.metrics.landmarks import (LmdResult, MouthTrack, lmd, lmd_frames, lmd_of_tracks,
                                        mouth_landmarks, to_crop_coords)
from taem_jax.metrics.report import (PAPER_TABLE1, PAPER_TABLE2, Table, check_frames,
                                     check_pair, mean_over_clips)
from taem_jax.metrics.sync import (VSHIFT, ExpertScorer, SyncNetV2Scorer, SyncScores, distances,
                                   lse, score_video, scorer_for, sync_scores)

__all__ = [
    "MOUTH_REGION", "PAPER_TABLE1", "PAPER_TABLE2", "VSHIFT", "ExpertScorer", "LmdResult",
    "MouthTrack", "SyncNetV2Scorer", "SyncScores", "Table", "check_frames", "check_pair",
    "distances", "face_crops", "lmd", "lmd_frames", "lmd_of_tracks", "lse", "mean_over_clips",
    "mouth_colour_shift", "mouth_detail", "mouth_detail_ratio", "mouth_landmarks", "mouth_strip",
    "psnr",
    "psnr_frames", "score_video", "scorer_for", "ssim", "ssim_frames", "sync_scores",
    "to_crop_coords",
]
